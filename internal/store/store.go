// Package store is the only way the application reaches Postgres.
//
// Every query runs inside a transaction opened by WithTenant or WithPlatform;
// the *Tx they hand to fn carries the query methods, so code cannot query
// without first choosing a scope. The scope is a transaction-local setting
// (set_config(..., true)), which row-level security policies read; it ends
// with the transaction, so a pooled connection never carries one tenant's
// setting to the next borrower.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store wraps the application's connection pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects with the application role's URL and checks the connection.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse database URL: %w", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: ping %s@%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that Postgres answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Pool exposes the pool for libraries that need it (the session store).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Tx is a transaction bound to one scope. Its methods are the queries.
type Tx struct {
	tx       pgx.Tx
	tenantID uuid.UUID // zero in platform scope
}

// TenantID is the tenant this transaction is scoped to (zero in platform scope).
func (t *Tx) TenantID() uuid.UUID { return t.tenantID }

// WithTenant runs fn in a transaction scoped to tenantID: row-level security
// shows and accepts only that tenant's rows. fn's error rolls it back.
func (s *Store) WithTenant(ctx context.Context, tenantID uuid.UUID, fn func(*Tx) error) error {
	if tenantID == uuid.Nil {
		return errors.New("store: WithTenant: no tenant")
	}
	// The setting rides in the BEGIN round trip. A uuid.UUID formats as hex and
	// dashes only, so interpolating it cannot inject SQL.
	begin := "BEGIN; SELECT set_config('app.tenant_id', '" + tenantID.String() + "', true)"
	return s.run(ctx, begin, &Tx{tenantID: tenantID}, fn)
}

// WithPlatform runs fn in a transaction that sees every tenant's rows. Only
// platform-admin actions, sign-in lookups and webhook routing may use it; the
// callers check authorization first.
func (s *Store) WithPlatform(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, "BEGIN; SELECT set_config('app.platform', 'on', true)", &Tx{}, fn)
}

// WithNoScope runs fn with no tenant and no platform scope: every tenant row is
// invisible. It exists so tests can prove exactly that.
func (s *Store) WithNoScope(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, "BEGIN", &Tx{}, fn)
}

func (s *Store) run(ctx context.Context, begin string, t *Tx, fn func(*Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	t.tx = tx
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

// Exec runs a statement; for tests and one-off maintenance inside a scope.
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

// QueryInt runs a query returning one integer; for tests and counters.
func (t *Tx) QueryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	if err := t.tx.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, mapErr(err)
	}
	return n, nil
}

// Errors callers branch on. Wrapped errors keep the detail for logs.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a unique-constraint violation; ConstraintError says which.
	ErrConflict = errors.New("conflict")
	// ErrReferenced is a foreign-key violation: a row is still in use, or points
	// at something that does not exist in this tenant.
	ErrReferenced = errors.New("referenced")
	// ErrForbidden is a row-level security or privilege refusal.
	ErrForbidden = errors.New("forbidden by database policy")
	// ErrInvalid is a check-constraint violation.
	ErrInvalid = errors.New("invalid value")
)

// ConstraintError names the constraint behind ErrConflict, ErrReferenced or ErrInvalid.
type ConstraintError struct {
	Kind       error
	Constraint string
	Err        error
}

func (e *ConstraintError) Error() string {
	return e.Kind.Error() + " (" + e.Constraint + "): " + e.Err.Error()
}
func (e *ConstraintError) Unwrap() []error { return []error{e.Kind, e.Err} }

func mapErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch pg.Code {
	case "23505":
		return &ConstraintError{Kind: ErrConflict, Constraint: pg.ConstraintName, Err: err}
	case "23503":
		return &ConstraintError{Kind: ErrReferenced, Constraint: pg.ConstraintName, Err: err}
	case "23514", "23502", "22001", "22P02":
		return &ConstraintError{Kind: ErrInvalid, Constraint: pg.ConstraintName, Err: err}
	case "42501":
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	return err
}

// scope picks the tenant for an insert: the transaction's own tenant, or in
// platform scope the one the caller names. RLS checks it either way.
func (t *Tx) scope(tenantID uuid.UUID) uuid.UUID {
	if t.tenantID != uuid.Nil {
		return t.tenantID
	}
	return tenantID
}

// QueryRowScan runs a query returning one row into dest; for tests and
// one-off maintenance inside a scope.
func (t *Tx) QueryRowScan(ctx context.Context, sql string, args []any, dest ...any) error {
	if err := t.tx.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return mapErr(err)
	}
	return nil
}
