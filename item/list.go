package item

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
)

// ElemID identifies a list element for its whole life: elements are never
// moved or changed, only inserted and deleted. The zero ElemID is the head,
// the anchor "before the first element"; an element whose ID is zero has no
// id yet (see [AssignIDs]).
type ElemID struct {
	// Seq is a Lamport number: a new element's Seq is greater than that of
	// every element of the list its writer saw.
	Seq uint64
	// Tag is the inserting write's tag, the same for every element one
	// write inserts and different between concurrent writes.
	Tag uint64
}

// Compare orders ids by Seq, then by Tag.
func (a ElemID) Compare(b ElemID) int {
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.Tag, b.Tag)
}

// IsHead reports whether the id is the zero id.
func (a ElemID) IsHead() bool { return a == ElemID{} }

// ListElem is a list element with its identity.
type ListElem struct {
	ID    ElemID
	Value Value
}

func (v Value) meta() []ElemID {
	if v.c == nil {
		return nil
	}
	return v.c.meta
}

// List returns a list of the given scalar values, in order, duplicates
// kept. Its elements have no ids yet: a repository assigns them when the
// list is written (see [AssignIDs]), matching elements to the field's
// previous value so that unchanged elements keep theirs. It fails with
// [ErrInvalidValue] if an element is not a valid scalar.
func List(elems ...Value) (Value, error) {
	les := make([]ListElem, len(elems))
	for i, e := range elems {
		les[i].Value = e
	}
	return ListOf(les)
}

// StringList returns a list of strings without ids.
func StringList(elems ...string) Value {
	c := &composite{elems: make([]Value, len(elems)), meta: make([]ElemID, len(elems))}
	for i, e := range elems {
		c.elems[i] = String(e)
	}
	return Value{t: TypeList, c: c}
}

// ListOf returns a list of the given elements with their ids. It fails
// with [ErrInvalidValue] if an element is not a valid scalar or two
// elements share an id.
func ListOf(elems []ListElem) (Value, error) {
	v := newList(elems)
	return v, v.Valid()
}

func newList(elems []ListElem) Value {
	c := &composite{elems: make([]Value, len(elems)), meta: make([]ElemID, len(elems))}
	for i, e := range elems {
		c.elems[i], c.meta[i] = e.Value, e.ID
	}
	return Value{t: TypeList, c: c}
}

// ListElems returns a list's elements with their ids, in order.
func (v Value) ListElems() []ListElem {
	if v.t != TypeList {
		return nil
	}
	out := make([]ListElem, len(v.c.elems))
	for i, e := range v.c.elems {
		out[i] = ListElem{ID: v.c.meta[i], Value: e}
	}
	return out
}

func (v Value) validList() error {
	seen := make(map[ElemID]bool, len(v.c.elems))
	for i, e := range v.c.elems {
		if !e.t.Scalar() {
			return fmt.Errorf("%w: a list holds scalars, not %s", ErrInvalidValue, e.t)
		}
		if err := e.valid(MaxDepth); err != nil {
			return err
		}
		id := v.c.meta[i]
		if err := checkID(id, true); err != nil {
			return err
		}
		if id.IsHead() {
			continue
		}
		if seen[id] {
			return fmt.Errorf("%w: two list elements with id %d.%x", ErrInvalidValue, id.Seq, id.Tag)
		}
		seen[id] = true
	}
	return nil
}

// assigned reports whether every element of a list has an id.
func (v Value) assigned() bool {
	for _, id := range v.meta() {
		if id.IsHead() {
			return false
		}
	}
	return true
}

// maxSeq bounds Seq so that an element's header (Seq<<1 and a flag)
// fits a uvarint.
const maxSeq = 1<<63 - 1

// checkID checks an id's range: Seq at most maxSeq, and the head (if
// allowed) is the only id with Seq 0.
func checkID(id ElemID, headOK bool) error {
	switch {
	case id.Seq > maxSeq:
		return fmt.Errorf("%w: list element Seq %d out of range", ErrInvalidValue, id.Seq)
	case id.Seq == 0 && (id.Tag != 0 || !headOK):
		return fmt.Errorf("%w: list element id with Seq 0", ErrInvalidValue)
	}
	return nil
}

var errUnassigned = fmt.Errorf("%w: list elements without ids (a repository assigns them when it writes the item)", ErrInvalidValue)

// checkStored fails for values that are valid but cannot be encoded: lists
// whose elements have no ids yet.
func checkStored(v Value) error {
	if v.t == TypeList && !v.assigned() {
		return errUnassigned
	}
	return nil
}

// AssignIDs returns next with ids given to the elements of its list fields
// that have none, so that it can be stored as the successor of prev. Each
// list is matched against prev's list of the same field: an element keeps
// the id of the element of prev it matches (same value, and same id if it
// has one), in order, as a longest common subsequence after the common
// prefix and suffix; every other element is new and gets id (Seq, tag),
// Seq counting up from one more than the largest Seq in prev's list. tag
// must differ between concurrent
// writes of one item; it is derived from the write (its session, parents
// and time), not from the commit, whose id depends on these ids.
func AssignIDs(prev, next Item, tag uint64) Item {
	var out []Field
	for i, f := range next.fields {
		if f.Value.t != TypeList {
			continue
		}
		p, _ := prev.Get(f.Name)
		if p.t == TypeList && Equal(p, f.Value) {
			continue
		}
		if f.Value.assigned() && p.t == TypeList && subsetOf(f.Value, p) {
			continue
		}
		if out == nil {
			out = slices.Clone(next.fields)
		}
		out[i].Value = assignList(p, f.Value, tag)
	}
	if out == nil {
		return next
	}
	return Item{fields: out, deleted: next.deleted}
}

// subsetOf reports whether every element of v is an element of p, with the
// same value and relative order.
func subsetOf(v, p Value) bool {
	pos := indexList(p)
	last := -1
	for i, id := range v.c.meta {
		j, ok := pos[id]
		if !ok || j <= last || !Equal(p.c.elems[j], v.c.elems[i]) {
			return false
		}
		last = j
	}
	return true
}

func indexList(v Value) map[ElemID]int {
	pos := make(map[ElemID]int, v.Len())
	for i, id := range v.meta() {
		pos[id] = i
	}
	return pos
}

// maxLCS bounds the cells of the common-subsequence table; beyond it the
// middle of a rewritten list is taken as deleted and inserted anew.
const maxLCS = 1 << 21

func assignList(prev, next Value, tag uint64) Value {
	pe, ne := prev.ListElems(), next.ListElems()
	match := func(i, j int) bool {
		id := ne[j].ID
		return (id.IsHead() || id == pe[i].ID) && Equal(pe[i].Value, ne[j].Value)
	}
	kept := make([]int, len(ne)) // index in pe + 1, or 0 for a new element
	lo := 0
	for lo < len(pe) && lo < len(ne) && match(lo, lo) {
		kept[lo] = lo + 1
		lo++
	}
	hp, hn := len(pe), len(ne)
	for hp > lo && hn > lo && match(hp-1, hn-1) {
		hp, hn = hp-1, hn-1
		kept[hn] = hp + 1
	}
	if n, m := hp-lo, hn-lo; n > 0 && m > 0 && n*m <= maxLCS {
		lcs(lo, hp, lo, hn, match, kept)
	}
	var seq uint64
	for _, e := range pe {
		seq = max(seq, e.ID.Seq)
	}
	out := make([]ListElem, len(ne))
	for j := range ne {
		if kept[j] > 0 {
			out[j] = pe[kept[j]-1]
		} else {
			seq++
			out[j] = ListElem{ID: ElemID{Seq: seq, Tag: tag}, Value: ne[j].Value}
		}
	}
	return newList(out)
}

// lcs records in kept a longest common subsequence of pe[a:b] and ne[c:d].
func lcs(a, b, c, d int, match func(i, j int) bool, kept []int) {
	n, m := b-a, d-c
	t := make([]uint32, (n+1)*(m+1)) // t[i*(m+1)+j]: LCS of pe[a+i:b], ne[c+j:d]
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if match(a+i, c+j) {
				t[i*(m+1)+j] = t[(i+1)*(m+1)+j+1] + 1
			} else {
				t[i*(m+1)+j] = max(t[(i+1)*(m+1)+j], t[i*(m+1)+j+1])
			}
		}
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case match(a+i, c+j):
			kept[c+j] = a + i + 1
			i, j = i+1, j+1
		case t[(i+1)*(m+1)+j] >= t[i*(m+1)+j+1]:
			i++
		default:
			j++
		}
	}
}

// ListRun is elements inserted one after another right after After (the
// zero id: at the start of the list).
type ListRun struct {
	After ElemID
	Elems []ListElem
}

// diffList returns the element edit that turns list a into list b: the
// elements of a that b lacks are deleted, and b's new elements are
// inserted in runs, each anchored at the element before it in b. Lists
// that cannot be related element by element (elements without ids, or
// common elements in another order or with other values) are replaced.
func diffList(name string, a, b Value) Edit {
	set := Edit{Field: name, Op: OpSet, Value: b}
	if !a.assigned() || !b.assigned() {
		return set
	}
	pos := indexList(a)
	e := Edit{Field: name, Op: OpListOps}
	inB := make(map[ElemID]bool, b.Len())
	last := -1
	var before ElemID
	for j, id := range b.c.meta {
		inB[id] = true
		if i, ok := pos[id]; ok {
			if i <= last || !Equal(a.c.elems[i], b.c.elems[j]) {
				return set
			}
			last = i
		} else {
			el := ListElem{ID: id, Value: b.c.elems[j]}
			if n := len(e.Runs); n > 0 && before == lastID(e.Runs[n-1]) {
				e.Runs[n-1].Elems = append(e.Runs[n-1].Elems, el)
			} else {
				e.Runs = append(e.Runs, ListRun{After: before, Elems: []ListElem{el}})
			}
		}
		before = id
	}
	for _, id := range a.c.meta {
		if !inB[id] {
			e.DelIDs = append(e.DelIDs, id)
		}
	}
	if len(e.Runs) == 0 && len(e.DelIDs) == 0 {
		return set
	}
	slices.SortFunc(e.DelIDs, ElemID.Compare)
	return e
}

func lastID(r ListRun) ElemID { return r.Elems[len(r.Elems)-1].ID }

// applyListOps deletes e.DelIDs from cur and inserts e.Runs, each right
// after its anchor. Every deleted id and anchor must be in the list and no
// inserted id may be: a delta that does not fit fails with [ErrCorrupt].
func applyListOps(cur Value, e Edit) (Value, error) {
	bad := func(format string, args ...any) (Value, error) {
		return Value{}, fieldErr(e.Field, fmt.Errorf("%w: list edit does not fit: "+format, append([]any{ErrCorrupt}, args...)...))
	}
	pos := indexList(cur)
	del := make(map[ElemID]bool, len(e.DelIDs))
	for _, id := range e.DelIDs {
		if _, ok := pos[id]; !ok {
			return bad("deleted element %d.%x is absent", id.Seq, id.Tag)
		}
		del[id] = true
	}
	runs := make(map[ElemID][]ListElem, len(e.Runs))
	n := cur.Len() - len(del)
	for _, r := range e.Runs {
		if _, dup := runs[r.After]; dup {
			return bad("two runs after %d.%x", r.After.Seq, r.After.Tag)
		}
		runs[r.After] = r.Elems
		n += len(r.Elems)
	}
	out := make([]ListElem, 0, n)
	var emit func(after ElemID)
	emit = func(after ElemID) {
		run, ok := runs[after]
		if !ok {
			return
		}
		delete(runs, after)
		for _, el := range run {
			out = append(out, el)
			emit(el.ID)
		}
	}
	emit(ElemID{})
	for i, id := range cur.meta() {
		if !del[id] {
			out = append(out, ListElem{ID: id, Value: cur.c.elems[i]})
			emit(id)
		}
	}
	if len(runs) > 0 {
		return bad("%d runs anchored at absent elements", len(runs))
	}
	v := newList(out)
	if err := v.validList(); err != nil {
		return bad("%v", err)
	}
	return v, nil
}

// mergeListOps merges concurrent list edits onto cur. cur, and each edit's
// list (cur without the elements it deleted, with its runs inserted after
// their anchors), is a chain of elements in that order. The
// merged list is the one order that agrees with every chain in which, when
// several elements may come next, the one with the greatest id comes first;
// then the elements any edit deleted are dropped. So no merge reorders
// elements any leaf holds, concurrent insertions at one place are ordered
// by id, and a run one write inserted (ids with consecutive Seqs) is never
// split by another's: its next element's id is greater than its first's,
// which beat the other run's first. Each element goes only if a leaf
// deleted that very element.
func mergeListOps(cur Value, edits []Edit) (Value, error) {
	for _, e := range edits {
		if e.Op != OpListOps {
			return applyAll(cur, edits)
		}
	}
	if cur.t != TypeList && cur.t != TypeInvalid {
		return applyAll(cur, edits)
	}
	g := newListGraph(cur.Len())
	base := make([]int, cur.Len())
	for i, id := range cur.meta() {
		base[i] = g.node(ListElem{ID: id, Value: cur.c.elems[i]})
	}
	g.chain(base)
	del := map[ElemID]bool{}
	for _, e := range edits {
		edel := make(map[ElemID]bool, len(e.DelIDs))
		for _, id := range e.DelIDs {
			del[id], edel[id] = true, true
		}
		g.chain(withRuns(g, base, e.Runs, edel))
	}
	return newList(g.order(del)), nil
}

// withRuns returns the chain of base (node numbers) without the elements
// in del and with runs inserted after their anchors; runs whose anchor is
// in neither go at the end.
func withRuns(g *listGraph, base []int, runs []ListRun, del map[ElemID]bool) []int {
	after := make(map[ElemID][]int, len(runs))
	n := len(base)
	for _, r := range runs {
		nodes := make([]int, len(r.Elems))
		for i, el := range r.Elems {
			nodes[i] = g.node(el)
		}
		after[r.After] = append(after[r.After], nodes...)
		n += len(nodes)
	}
	out := make([]int, 0, n)
	var emit func(id ElemID)
	emit = func(id ElemID) {
		run, ok := after[id]
		if !ok {
			return
		}
		delete(after, id)
		for _, x := range run {
			out = append(out, x)
			emit(g.elems[x].ID)
		}
	}
	emit(ElemID{})
	for _, x := range base {
		if id := g.elems[x].ID; !del[id] {
			out = append(out, x)
			emit(id)
		}
	}
	for _, r := range runs { // anchors missing: edits that do not fit cur
		emit(r.After)
	}
	return out
}

// listGraph holds the elements of a list merge and the order each chain
// puts them in.
type listGraph struct {
	ids   map[ElemID]int
	elems []ListElem
	next  [][]int // next[x]: the elements some chain puts right after x
	preds []int   // how many chain links lead to each element
}

func newListGraph(n int) *listGraph {
	return &listGraph{ids: make(map[ElemID]int, n), elems: make([]ListElem, 0, n)}
}

// node returns the number of el's node, adding it if it is new.
func (g *listGraph) node(el ListElem) int {
	if x, ok := g.ids[el.ID]; ok {
		return x
	}
	x := len(g.elems)
	g.ids[el.ID] = x
	g.elems = append(g.elems, el)
	g.next = append(g.next, nil)
	g.preds = append(g.preds, 0)
	return x
}

func (g *listGraph) chain(nodes []int) {
	for i := 1; i < len(nodes); i++ {
		a, b := nodes[i-1], nodes[i]
		if a != b {
			g.next[a] = append(g.next[a], b)
			g.preds[b]++
		}
	}
}

// order returns the elements in the order every chain agrees with, the
// greatest id first among those free to come next, without those in del.
// Chains that contradict each other (possible only in forged histories)
// are resolved by taking the greatest id not placed yet.
func (g *listGraph) order(del map[ElemID]bool) []ListElem {
	greater := func(a, b int) bool { return g.elems[a].ID.Compare(g.elems[b].ID) > 0 }
	h := &nodeHeap{less: greater}
	for x, p := range g.preds {
		if p == 0 {
			h.push(x)
		}
	}
	var byID []int // every node, greatest id first, for contradictions
	done := make([]bool, len(g.elems))
	out := make([]ListElem, 0, len(g.elems))
	for placed := 0; placed < len(g.elems); {
		if h.len() == 0 {
			if byID == nil {
				byID = make([]int, len(g.elems))
				for i := range byID {
					byID[i] = i
				}
				slices.SortFunc(byID, func(a, b int) int { return g.elems[b].ID.Compare(g.elems[a].ID) })
			}
			for done[byID[0]] {
				byID = byID[1:]
			}
			h.push(byID[0])
		}
		x := h.pop()
		if done[x] {
			continue
		}
		done[x] = true
		placed++
		if !del[g.elems[x].ID] {
			out = append(out, g.elems[x])
		}
		for _, y := range g.next[x] {
			if g.preds[y]--; g.preds[y] == 0 && !done[y] {
				h.push(y)
			}
		}
	}
	return out
}

// nodeHeap is a binary heap of node numbers, the one less ranks first on
// top.
type nodeHeap struct {
	xs   []int
	less func(a, b int) bool
}

func (h *nodeHeap) len() int { return len(h.xs) }

func (h *nodeHeap) push(x int) {
	h.xs = append(h.xs, x)
	for i := len(h.xs) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(h.xs[i], h.xs[p]) {
			break
		}
		h.xs[i], h.xs[p] = h.xs[p], h.xs[i]
		i = p
	}
}

func (h *nodeHeap) pop() int {
	top := h.xs[0]
	last := len(h.xs) - 1
	h.xs[0] = h.xs[last]
	h.xs = h.xs[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= last {
			break
		}
		if c+1 < last && h.less(h.xs[c+1], h.xs[c]) {
			c++
		}
		if !h.less(h.xs[c], h.xs[i]) {
			break
		}
		h.xs[i], h.xs[c] = h.xs[c], h.xs[i]
		i = c
	}
	return top
}

// ListFromAny converts a Go slice or array to a list without ids, in
// order, each element converted as [FromAny] converts it (so it must be a
// scalar); a list is returned as it is and a set becomes a list of its
// elements in set order. Struct fields and schema fields that are lists
// are converted with it, where FromAny would make a set.
func ListFromAny(x any) (Value, error) {
	switch x := x.(type) {
	case Value:
		if x.t == TypeSet {
			return List(x.Elems()...)
		}
		if x.t != TypeList {
			return Value{}, fmt.Errorf("%w: a %s is not a list", ErrTypeMismatch, x.t)
		}
		return x, x.Valid()
	case []string:
		v := StringList(x...)
		return v, v.Valid()
	}
	rv := reflect.ValueOf(x)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return Value{}, fmt.Errorf("%w: a Go %T is not a list", ErrTypeMismatch, x)
	}
	elems := make([]Value, rv.Len())
	for i := range elems {
		e, err := FromAny(rv.Index(i).Interface())
		if err != nil {
			return Value{}, err
		}
		elems[i] = e
	}
	return List(elems...)
}

// FillIDs returns it with ids given to the list elements that have none,
// derived from the list's field name and values alone: Seq counts up from
// one more than the list's largest, and the tag is a hash of the name and
// the values. Every peer that fills the same list gets the same ids, so it
// suits values that peers compute alike rather than write, such as a
// schema's defaults and upgrades, which also run inside merges. A list
// written by a user gets its ids from [AssignIDs] instead.
func FillIDs(it Item) Item {
	var out []Field
	for i, f := range it.fields {
		if f.Value.t != TypeList || f.Value.assigned() {
			continue
		}
		if out == nil {
			out = slices.Clone(it.fields)
		}
		out[i].Value = fillList(f.Name, f.Value)
	}
	if out == nil {
		return it
	}
	return Item{fields: out, deleted: it.deleted}
}

func fillList(name string, v Value) Value {
	h := fnv.New64a()
	h.Write([]byte(name))
	var seq uint64
	for i, e := range v.c.elems {
		h.Write(appendValue(nil, e))
		seq = max(seq, v.c.meta[i].Seq)
	}
	tag := h.Sum64()
	elems := v.ListElems()
	for i := range elems {
		if elems[i].ID.IsHead() {
			seq++
			elems[i].ID = ElemID{Seq: seq, Tag: tag}
		}
	}
	if w := newList(elems); w.validList() == nil {
		return w
	}
	return v // a filled id met one the list had: leave it for the writer's check
}
