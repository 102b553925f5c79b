"""superseded receipts: the receipts a revote replaced, for the public board

Also: ballots' index on poll_id becomes (poll_id, receipt), so the board's pages are read
in receipt order off the index, with no sort (and no extra index to keep up on insert).

Revision ID: 5b8e0c2d4a71
Revises: e6fa7902b3d1
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b8e0c2d4a71'
down_revision = 'e6fa7902b3d1'
branch_labels = None
depends_on = None


def upgrade():
    # No token, no ballot, no time: only what the board lists (DESIGN.md rule 4).
    op.create_table('superseded_receipts',
    sa.Column('receipt', sa.String(length=32), nullable=False),
    sa.Column('poll_id', sa.Integer(), nullable=False),
    sa.Column('choices', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_superseded_receipts_poll_id_polls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('receipt', name=op.f('pk_superseded_receipts'))
    )
    with op.batch_alter_table('superseded_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_superseded_receipts_poll_id_receipt', ['poll_id', 'receipt'], unique=False)

    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.create_index('ix_ballots_poll_id_receipt', ['poll_id', 'receipt'], unique=False)
        batch_op.drop_index('ix_ballots_poll_id')


def downgrade():
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.create_index('ix_ballots_poll_id', ['poll_id'], unique=False)
        batch_op.drop_index('ix_ballots_poll_id_receipt')

    with op.batch_alter_table('superseded_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_superseded_receipts_poll_id_receipt')

    op.drop_table('superseded_receipts')
