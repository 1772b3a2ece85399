-- Tenants as a security boundary: row-level security on every table that holds tenant rows.
--
-- A tenant's role (made by `durable tenant create NAME`) is mapped to its tenant in
-- durable_roles, which only the owner writes; every policy compares a row's tenant with the
-- tenant of current_user, so a tenant's credentials can neither see nor write another tenant's
-- rows, even with hand-written SQL, and cannot change which tenant they are. Roles without a
-- mapping see no rows at all.
--
-- Unchanged: the tables' owner (the role that runs the migrations: tests, single-tenant
-- deployments, workers and servers that serve every tenant) is not subject to row-level
-- security, and neither is a role with BYPASSRLS. Rows are not FORCEd through the policies.
--
-- Invariant: every table with a tenant column has row-level security and the policy
-- durable_tenant. A later migration that adds such a table ends with
-- `SELECT durable_protect_tenant_tables();` (durable tenant create runs it too).

CREATE TABLE durable_roles (
    role_name name PRIMARY KEY,
    tenant    text NOT NULL
);

CREATE INDEX durable_roles_by_tenant ON durable_roles (tenant);

-- A tenant role reads its own mapping (the policies' subquery runs with its privileges).
ALTER TABLE durable_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY durable_own_role ON durable_roles FOR SELECT USING (role_name = current_user);

CREATE FUNCTION durable_protect_tenant_tables() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    n integer := 0;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
          FROM pg_class c
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relname <> 'durable_roles'
           AND NOT EXISTS (SELECT 1 FROM pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = 'durable_tenant')
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        -- The subquery is an InitPlan: evaluated once per statement, and tenant = $1 keeps
        -- using the (tenant, ...) indexes.
        EXECUTE format('CREATE POLICY durable_tenant ON %s USING (tenant = (SELECT r.tenant '
                       'FROM durable_roles r WHERE r.role_name = current_user))', t);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

REVOKE EXECUTE ON FUNCTION durable_protect_tenant_tables() FROM PUBLIC;

SELECT durable_protect_tenant_tables();
