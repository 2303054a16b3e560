"""audit logs by time: the administrators' search across users, newest first

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 01:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # without it, each page of GET /api/admin/audit-logs read and sorted the whole table
    op.create_index('ix_audit_logs_created', 'audit_logs', ['created_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_audit_logs_created', table_name='audit_logs')
