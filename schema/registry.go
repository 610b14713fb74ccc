package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Registry holds schemas by namespace and version. It is safe for
// concurrent use; the zero Registry is empty and ready to use.
type Registry struct {
	// schemasMu guards schemas. The *Schema values themselves never change
	// once registered, so they may be used after the lock is released.
	schemasMu sync.RWMutex
	schemas   map[string][]*Schema // by namespace, sorted by version
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{schemas: map[string][]*Schema{}} }

// Register adds a copy of s after checking that it is well formed
// ([ErrInvalidSchema]) and that its version of its namespace is not
// registered yet ([ErrDuplicate]). Versions may be registered in any order.
func (r *Registry) Register(s Schema) error { return r.register([]Schema{s}) }

// register adds all of list, or none of it if one is refused.
func (r *Registry) register(list []Schema) error {
	clones := make([]*Schema, len(list))
	for i := range list {
		if err := list[i].validate(list[i].name()); err != nil {
			return err
		}
		clones[i] = list[i].clone()
	}
	r.schemasMu.Lock()
	defer r.schemasMu.Unlock()
	seen := make(map[commit.Schema]bool, len(clones))
	for _, s := range clones {
		if _, ok := r.lookup(s.Ref()); ok || seen[s.Ref()] {
			return s.fieldErr("", ErrDuplicate)
		}
		seen[s.Ref()] = true
	}
	for _, s := range clones {
		r.insert(s)
	}
	return nil
}

// insert adds s in version order; the caller holds schemasMu.
func (r *Registry) insert(s *Schema) {
	if r.schemas == nil {
		r.schemas = map[string][]*Schema{}
	}
	vs := r.schemas[s.NS]
	i, _ := slices.BinarySearchFunc(vs, s.Version, byVersion)
	r.schemas[s.NS] = slices.Insert(vs, i, s)
}

func byVersion(s *Schema, v uint32) int { return cmp.Compare(s.Version, v) }

// lookup finds a schema; the caller holds schemasMu.
func (r *Registry) lookup(ref commit.Schema) (*Schema, bool) {
	vs := r.schemas[ref.NS]
	i, ok := slices.BinarySearchFunc(vs, ref.Version, byVersion)
	if !ok {
		return nil, false
	}
	return vs[i], true
}

// Lookup returns the schema ref names. The dynamic schema is never
// registered. The result is shared: do not modify it.
func (r *Registry) Lookup(ref commit.Schema) (*Schema, bool) {
	r.schemasMu.RLock()
	defer r.schemasMu.RUnlock()
	return r.lookup(ref)
}

// Validate checks an item against the schema ref names: the dynamic schema
// (every field storable), or a registered schema's Check. A namespace or
// version not registered is an error wrapping ErrUnknownSchema: nothing
// here can vouch for the item.
func (r *Registry) Validate(it item.Item, ref commit.Schema) error {
	if ref.NS == "" {
		return CheckDynamic(it)
	}
	s, ok := r.Lookup(ref)
	if !ok {
		return fmt.Errorf("%w: %s is not registered here", ErrUnknownSchema, ref)
	}
	return s.Check(it)
}

// Latest returns the highest registered version of namespace ns. The
// result is shared: do not modify it.
func (r *Registry) Latest(ns string) (*Schema, bool) {
	r.schemasMu.RLock()
	defer r.schemasMu.RUnlock()
	vs := r.schemas[ns]
	if len(vs) == 0 {
		return nil, false
	}
	return vs[len(vs)-1], true
}

// All returns every registered schema sorted by namespace, then version.
// The schemas are shared: do not modify them.
func (r *Registry) All() []*Schema {
	r.schemasMu.RLock()
	defer r.schemasMu.RUnlock()
	var all []*Schema
	for _, vs := range r.schemas {
		all = append(all, vs...)
	}
	slices.SortFunc(all, func(a, b *Schema) int {
		return cmp.Or(strings.Compare(a.NS, b.NS), cmp.Compare(a.Version, b.Version))
	})
	return all
}

// Upgrade converts it, an item of schema from, to version to of the same
// namespace. For each registered version v with from.Version < v <= to, in
// ascending order, it applies v's Renames, then its Removes, then its
// Upgrade func, then converts fields to v's types where item.Convert loses
// nothing (others stay as they are), then fills v's defaults. An item of the dynamic schema, or
// one already at version to, is returned unchanged.
//
// Errors wrap [ErrUnknownSchema] (namespace or target version not
// registered) or [ErrUpgrade] (a downgrade, or an Upgrade func that fails,
// panics or returns an invalid item) and name the versions. Upgrade does
// not Check the result. Given deterministic Upgrade funcs it is
// deterministic: every peer upgrades the same item to the same value.
func (r *Registry) Upgrade(it item.Item, from commit.Schema, to uint32) (item.Item, error) {
	if from.NS == "" || from.Version == to {
		return it, nil
	}
	steps, err := r.steps(from, to)
	if err != nil {
		return item.Item{}, err
	}
	for _, s := range steps {
		if it, err = s.upgradeFrom(it); err != nil {
			return item.Item{}, fmt.Errorf("%w: %s to %s/%d: at version %d: %w",
				ErrUpgrade, from, from.NS, to, s.Version, err)
		}
	}
	// Upgrades run inside merges too, whose results are stored: lists an
	// upgrade made get ids every peer derives alike.
	return item.FillIDs(it), nil
}

// steps returns the schemas an upgrade from from to version to goes through.
func (r *Registry) steps(from commit.Schema, to uint32) ([]*Schema, error) {
	if to < from.Version {
		return nil, fmt.Errorf("%w: %s to %s/%d: cannot downgrade", ErrUpgrade, from, from.NS, to)
	}
	r.schemasMu.RLock()
	defer r.schemasMu.RUnlock()
	vs := r.schemas[from.NS]
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: namespace %s", ErrUnknownSchema, quote(from.NS))
	}
	last, ok := slices.BinarySearchFunc(vs, to, byVersion)
	if !ok {
		return nil, fmt.Errorf("%w: %s/%d (upgrading from %s)", ErrUnknownSchema, from.NS, to, from)
	}
	first, found := slices.BinarySearchFunc(vs, from.Version, byVersion)
	if found {
		first++
	}
	return slices.Clone(vs[first : last+1]), nil
}

// upgradeFrom converts an item of the previous version to s.
func (s *Schema) upgradeFrom(it item.Item) (item.Item, error) {
	it = s.move(it)
	if s.Upgrade != nil {
		var err error
		if it, err = recoveredUpgrade(s.Upgrade, it); err != nil {
			return item.Item{}, err
		}
		if err := it.Valid(); err != nil {
			return item.Item{}, fmt.Errorf("upgrade func returned an invalid item: %w", err)
		}
	}
	return s.WithDefaults(s.convert(it)), nil
}

// convert converts fields whose type is not s's to it where item.Convert
// loses nothing (a number field that became int keeps its integral
// values). Other fields are left as they are, for Check to report: an
// upgrade never drops data on its own.
func (s *Schema) convert(it item.Item) item.Item {
	for _, f := range s.Fields {
		v, ok := it.Get(f.Name)
		if !ok || v.Type() == f.Type {
			continue
		}
		if c, err := item.Convert(v, f.Type); err == nil {
			it = it.With(f.Name, c)
		}
	}
	return it
}

func recoveredUpgrade(fn func(item.Item) (item.Item, error), it item.Item) (out item.Item, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = item.Item{}, fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(it)
}

// Newest returns the newer of two schema references, for merges, which
// upgrade every leaf to the newest schema among them: of one namespace, the
// higher version. References are ordered by (namespace, version), so the
// dynamic schema is older than any other and, between two namespaces
// (which no upgrade connects), the choice is arbitrary but the same on every
// peer. Newest is commutative and associative.
func Newest(a, b commit.Schema) commit.Schema {
	if cmp.Or(strings.Compare(a.NS, b.NS), cmp.Compare(a.Version, b.Version)) >= 0 {
		return a
	}
	return b
}
