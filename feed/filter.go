package feed

import (
	"fmt"
	"slices"

	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// changeTypes lists the change types a filter may name.
var changeTypes = []string{store.ChangeCreate, store.ChangeUpdate, store.ChangeDelete, store.ChangeExpire, store.ChangeRestore}

// Filter selects the events of a subscription. Each dimension is a list of
// accepted values; an empty list (or a nil Key) accepts everything. An event
// matches when it matches every dimension. The zero Filter matches all.
//
// A Filter is read concurrently by the hub and must not be modified after it
// is passed to Subscribe.
type Filter struct {
	AgentIDs    []string
	Tiers       []string
	ChangeTypes []string
	Key         *keys.Glob
}

// NewFilter builds and validates a filter from the API's parameters: agent
// ids, tiers, a key glob ("" = every key) and change types. Invalid input
// (an unknown tier or change type, a malformed agent id or glob) is an error
// wrapping store.ErrInvalid.
func NewFilter(agentIDs, tiers []string, keyGlob string, changeTypes []string) (Filter, error) {
	f := Filter{AgentIDs: agentIDs, Tiers: tiers, ChangeTypes: changeTypes}
	if keyGlob != "" {
		g, err := keys.CompileGlob(keyGlob)
		if err != nil {
			return Filter{}, fmt.Errorf("feed: filter: %w: %w", store.ErrInvalid, err)
		}
		f.Key = g
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// Validate checks every value of the filter; Subscribe calls it.
func (f Filter) Validate() error {
	for _, id := range f.AgentIDs {
		if err := keys.ValidateAgentID(id); err != nil {
			return fmt.Errorf("feed: filter: %w: %w", store.ErrInvalid, err)
		}
	}
	for _, t := range f.Tiers {
		if err := keys.ValidateTier(t); err != nil {
			return fmt.Errorf("feed: filter: %w: %w", store.ErrInvalid, err)
		}
	}
	for _, c := range f.ChangeTypes {
		if !slices.Contains(changeTypes, c) {
			return fmt.Errorf("feed: filter: %w: unknown change type %q (want one of create, update, delete, expire, restore)", store.ErrInvalid, c)
		}
	}
	return nil
}

// Match reports whether the filter selects the event.
func (f *Filter) Match(e *store.Event) bool {
	if len(f.ChangeTypes) > 0 && !slices.Contains(f.ChangeTypes, e.ChangeType) {
		return false
	}
	return f.MatchKey(e.Key)
}

// MatchKey applies the key dimensions (agent ids, tiers, glob) only; it is
// what selects the entries of a snapshot, which are state, not changes.
func (f *Filter) MatchKey(k store.Key) bool {
	if len(f.AgentIDs) > 0 && !slices.Contains(f.AgentIDs, k.AgentID) {
		return false
	}
	if len(f.Tiers) > 0 && !slices.Contains(f.Tiers, k.Tier) {
		return false
	}
	return f.Key == nil || f.Key.Match(k.Key)
}
