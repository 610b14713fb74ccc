package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// shunPolicy is the server's syncproto.Policy: the policy it was given
// (the rules' authPolicy, Options.Policy or AllowAll), with the shun
// records applied before it, for every principal, nodes and the root
// included: a shunned commit, or one descending from one, is never
// accepted unless it is held already, and never in a view.
type shunPolicy struct {
	inner syncproto.Policy
	shuns *shunIndex
}

// AcceptCommit refuses shunned commits and their descendants, then asks
// the inner policy.
func (p *shunPolicy) AcceptCommit(ctx context.Context, path string, c *commit.Commit) error {
	if err := p.shuns.refuse(path, c); err != nil {
		return err
	}
	return p.inner.AcceptCommit(ctx, path, c)
}

// AdmitCommit asks the inner policy.
func (p *shunPolicy) AdmitCommit(ctx context.Context, path string, c *commit.Commit, before, after item.Item) error {
	return p.inner.AdmitCommit(ctx, path, c, before, after)
}

// View is the inner policy's view, less the shunned commits and their
// descendants when the repository holds any.
func (p *shunPolicy) View(ctx context.Context, path string, r syncproto.Repo) (syncproto.View, error) {
	// The Responder asks for the view before it accepts any commit: the
	// records read here decide both.
	if err := p.shuns.refresh(false); err != nil {
		return nil, err
	}
	v, err := p.inner.View(ctx, path, r)
	if err != nil {
		return nil, err
	}
	rs := p.shuns.of(path)
	if rs == nil {
		return v, nil
	}
	if rr, ok := r.(*repo.Repo); ok && !rs.holds(rr) {
		return v, nil // nothing to leave out (compacted away, or never here)
	}
	key := "all"
	if v != nil {
		key = v.Key()
	}
	return &shunView{inner: v, shuns: p.shuns, rs: rs, src: r, key: fmt.Sprintf("%s\x00shun\x00%s", key, rs.tag)}, nil
}

// shunView is a view without the shunned commits of its repository and
// their descendants. An item with shunned commits is never readable as a
// whole (MayRead): each of its commits is in the view if it descends
// from no shunned commit and the inner view would hold it (Own), so that
// an item written again after its purge syncs its new history alone.
type shunView struct {
	inner syncproto.View // nil: all of the repository
	shuns *shunIndex
	rs    *repoShuns
	src   commitSource
	key   string

	mu       sync.Mutex      // guards readable
	readable map[string]bool // the inner view's MayRead, by purged item
}

func (v *shunView) Key() string { return v.key }

func (v *shunView) MayRead(key string) bool {
	if v.rs.keys[key] != nil {
		return false
	}
	return v.inner == nil || v.inner.MayRead(key)
}

func (v *shunView) Own(c *commit.Commit) bool {
	if v.rs.keys[c.Key()] == nil {
		return v.inner != nil && v.inner.Own(c)
	}
	if v.shuns.taint(v.src, c) != nil {
		return false
	}
	return v.innerRead(c.Key()) || v.inner != nil && v.inner.Own(c)
}

// innerRead is the inner view's MayRead, asked once per item.
func (v *shunView) innerRead(key string) bool {
	if v.inner == nil {
		return true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	rd, ok := v.readable[key]
	if !ok {
		rd = v.inner.MayRead(key)
		if v.readable == nil {
			v.readable = map[string]bool{}
		}
		v.readable[key] = rd
	}
	return rd
}
