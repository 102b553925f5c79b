"""award and card codes: the winner card's prize name, and QR cards' typed-in codes

polls.award names the prize on the overlay's winner card (empty: the poll's title).
tokens.card_code_hash is the keyed hash of the short code printed on a QR card, which a
voter can type at /p/<slug>/claim when the QR code will not scan.

Revision ID: 7c1d2e3f4a55
Revises: 9c41d7e2a0f3
Create Date: 2026-12-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1d2e3f4a55'
down_revision = '9c41d7e2a0f3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('award', sa.String(length=120), server_default='', nullable=False))
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_code_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_tokens_card_code_hash'), ['card_code_hash'])


def downgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_tokens_card_code_hash'), type_='unique')
        batch_op.drop_column('card_code_hash')
    with op.batch_alter_table('polls', schema=None) as batch_op:
        batch_op.drop_column('award')
