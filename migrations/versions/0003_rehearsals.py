"""rehearsals: a poll may be a rehearsal copy of another (polls.rehearsal_of)

Revision ID: 9c41d7e2a0f3
Revises: 5b8e0c2d4a71
Create Date: 2026-12-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c41d7e2a0f3'
down_revision = '5b8e0c2d4a71'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rehearsal_of', sa.String(length=80), nullable=True))


def downgrade():
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.drop_column('rehearsal_of')
