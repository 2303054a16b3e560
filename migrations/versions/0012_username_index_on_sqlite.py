"""the case-insensitive unique index on usernames, again on SQLite

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00.000000

0007 adds users.is_admin with a server default SQLite's ALTER TABLE cannot take, so on SQLite
Alembic rebuilds the table; it copies the indexes it can reflect, and SQLite's reflection skips
expression indexes: uq_users_username_lower (0001) was dropped, and usernames differing only in
case were no longer refused by the database. PostgreSQL altered the table in place and kept it.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    clashes = bind.execute(
        sa.text('SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1 ORDER BY 1')
    ).scalars().all()
    if clashes:
        raise RuntimeError(
            'usernames held by more than one account (differing only in case): ' + ', '.join(clashes)
            + '. Rename all but one account of each (UPDATE users SET username = ... WHERE id = ...),'
            ' then run `flask db upgrade` again'
        )
    op.execute('CREATE UNIQUE INDEX IF NOT EXISTS uq_users_username_lower ON users (lower(username))')


def downgrade():
    pass  # the index belongs to 0001's schema: it stays
