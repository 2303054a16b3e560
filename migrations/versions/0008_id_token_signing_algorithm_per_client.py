"""id token signing algorithm per client

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 13:58:37.620837

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_token_signed_response_alg', sa.String(length=10), server_default='RS256', nullable=False))


def downgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('id_token_signed_response_alg')
