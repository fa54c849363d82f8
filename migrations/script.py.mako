<%!
    def body(code):
        """Alembic's generated commands without the comments it frames them with."""
        lines = [line for line in code.splitlines() if not line.strip().startswith("# ###")]
        return "\n".join(lines).strip()
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date.strftime("%Y-%m-%d")}
"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${body(upgrades) if upgrades else "pass"}


def downgrade():
    ${body(downgrades) if downgrades else "pass"}
