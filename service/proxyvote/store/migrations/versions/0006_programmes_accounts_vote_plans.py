"""voting choice: programmes, accounts (choice versions, holdings), vote plans

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('programmes',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('policies', sa.Text(), nullable=False),
    sa.Column('default_policy', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_programmes')),
    sa.UniqueConstraint('owner', 'name', 'version', name=op.f('uq_programmes_owner_name_version'))
    )
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programmes_owner'), ['owner'], unique=False)

    op.create_table('programme_accounts',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=40), nullable=False),
    sa.Column('programme', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_programme_accounts')),
    sa.UniqueConstraint('owner', 'programme', 'account_id', name=op.f('uq_programme_accounts_owner_programme_account_id'))
    )
    op.create_table('account_choices',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_pk', sa.Integer(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('policy', sa.String(length=200), nullable=False),
    sa.Column('custodian_account', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_pk'], ['programme_accounts.pk'], name=op.f('fk_account_choices_account_pk_programme_accounts')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_account_choices')),
    sa.UniqueConstraint('account_pk', 'effective_date', name=op.f('uq_account_choices_account_pk_effective_date'))
    )
    op.create_table('account_holdings',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_pk', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=40), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('shares', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_pk'], ['programme_accounts.pk'], name=op.f('fk_account_holdings_account_pk_programme_accounts')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_account_holdings')),
    sa.UniqueConstraint('account_pk', 'security', 'as_of', name=op.f('uq_account_holdings_account_pk_security_as_of'))
    )
    with op.batch_alter_table('account_holdings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_holdings_security'), ['security'], unique=False)

    op.create_table('vote_plans',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('plan_id', sa.String(length=40), nullable=False),
    sa.Column('owner', sa.String(length=40), nullable=False),
    sa.Column('programme', sa.String(length=200), nullable=False),
    sa.Column('programme_version', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.String(length=200), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('security', sa.String(length=40), nullable=False),
    sa.Column('accounts', sa.Integer(), nullable=False),
    sa.Column('meeting', sa.LargeBinary(), nullable=False),
    sa.Column('plan', sa.Text(), nullable=False),
    sa.Column('plan_hash', sa.String(length=64), nullable=False),
    sa.Column('positions', sa.LargeBinary(), nullable=False),
    sa.Column('positions_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_vote_plans')),
    sa.UniqueConstraint('plan_id', name=op.f('uq_vote_plans_plan_id'))
    )
    with op.batch_alter_table('vote_plans', schema=None) as batch_op:
        batch_op.create_index('ix_vote_plans_owner_programme_meeting_date', ['owner', 'programme', 'meeting_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('vote_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_vote_plans_owner_programme_meeting_date')
    op.drop_table('vote_plans')
    with op.batch_alter_table('account_holdings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_holdings_security'))
    op.drop_table('account_holdings')
    op.drop_table('account_choices')
    op.drop_table('programme_accounts')
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programmes_owner'))
    op.drop_table('programmes')
