"""the deletions SQLite skipped while its foreign keys were off

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 11:00:00.000000

The app's SQLite connections did not enforce foreign keys, so no ON DELETE action ran on an
embedded database: a deleted client's consents and codes, a deleted webhook's deliveries and
attempts, the codes of a removed two-factor method stayed, and a client registered again under the
same id found its predecessor's consents. This runs those actions now, on the rows left behind.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return  # PostgreSQL always enforced them
    while True:  # a deleted delivery leaves its attempts behind in turn: until nothing is left
        orphans = bind.exec_driver_sql('PRAGMA foreign_key_check').all()
        if not orphans:
            return
        for table, rowid, _parent, key in orphans:
            action, columns = _foreign_key(bind, table, key)
            if action == 'SET NULL':
                assignments = ', '.join(f'"{column}" = NULL' for column in columns)
                bind.execute(sa.text(f'UPDATE "{table}" SET {assignments} WHERE rowid = :rowid'), {'rowid': rowid})
            else:  # CASCADE: every foreign key of this schema is one or the other
                bind.execute(sa.text(f'DELETE FROM "{table}" WHERE rowid = :rowid'), {'rowid': rowid})


def _foreign_key(bind, table, key):
    """The ON DELETE action and the columns of foreign key number `key` of `table`."""
    rows = [row for row in bind.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').all() if row[0] == key]
    return rows[0][6], [row[3] for row in rows]


def downgrade():
    pass  # the rows are gone, as they should have been
