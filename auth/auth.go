// Package auth owns who is calling and whether they may: the principal carried
// in a request's context, and the Authorizer the engine consults before every
// read and write. Until RBAC lands, AllowAll is the only authorizer; the engine
// already calls it on every path so RBAC plugs in without touching the write
// path.
package auth

import (
	"context"
	"errors"
)

// ErrPermissionDenied is returned (wrapped) by an Authorizer that refuses.
var ErrPermissionDenied = errors.New("auth: permission denied")

// ErrUnauthenticated is returned when a request carries no valid identity.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// Anonymous is the principal of every request when auth is disabled (API.md:
// "every request acts as principal anonymous with the admin role").
var Anonymous = Principal{ID: "anonymous", Roles: []string{"admin"}}

// Principal is an authenticated caller.
type Principal struct {
	ID    string
	Roles []string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or Anonymous if there is none
// (an embedded caller that never set one acts as the local admin).
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Anonymous
}

// Action is what a request wants to do.
type Action string

// Actions the engine asks about.
const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionDelete Action = "delete"
	ActionAdmin  Action = "admin"
)

// Resource is what an action is on. Key is empty for tier-wide actions
// (listing) and AgentID for store-wide ones.
type Resource struct {
	AgentID string
	Tier    string
	Key     string
}

// Authorizer decides whether p may do a on r.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, a Action, r Resource) error
}

// AllowAll permits everything.
type AllowAll struct{}

// Authorize always returns nil.
func (AllowAll) Authorize(context.Context, Principal, Action, Resource) error { return nil }
