package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
)

// A server in a cluster (Options.Cluster) is a member whose membership
// package cluster keeps. It serves the routes the members use, signed as
// nodes of the deployment:
//
//	GET  /v1/cluster          the membership (cluster.View) as JSON
//	POST /v1/cluster/join     {"url", "raft"}: the requesting node joins
//	                          under the name of its node certificate (a
//	                          member forwarding it adds "name")
//	POST /v1/cluster/handoff  {"epoch"}: the requesting node handed off
//	                          for epoch (forwarded: with "name")
//
// A member that does not lead forwards the two POSTs to the leader. When
// the membership changes, the server hands each repository it holds to
// the owners it gains in the next placement, by syncing it to them as a
// node (goatdb.DB.SyncAsNode, which returns once they stored it), and then
// reports its handoff. The /sys repositories (accounts) go to every
// member. Once a change took effect, it drops the repositories it no
// longer owns, after a last sync to their owners and only if nothing was
// written here since (goatdb.DB.DropRepo's position check).

// clusterNode returns the request's node name, from its node certificate
// (authenticate checked it), or "" for any other principal.
func clusterNode(r *http.Request) string {
	p, ok := PrincipalFrom(r.Context())
	if !ok || !p.Node {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(r.Header.Get(transport.NodeCertHeader))
	if err != nil {
		return ""
	}
	c, err := authz.DecodeNodeCertificate(b)
	if err != nil {
		return ""
	}
	return c.Node()
}

func (s *Server) clusterRoutes(r chi.Router) {
	r.Get("/cluster", s.handleClusterView)
	r.Post("/cluster/join", s.handleClusterJoin)
	r.Post("/cluster/handoff", s.handleClusterHandoff)
	r.Post("/cluster/leave", s.handleClusterLeave)
}

// leaveRequest asks member Name to leave; Dead says it is gone for good,
// so the leader reports its handoff for it (its repositories' other
// owners hand them over).
type leaveRequest struct {
	Name string `json:"name"`
	Dead bool   `json:"dead,omitempty"`
}

func (s *Server) handleClusterLeave(w http.ResponseWriter, r *http.Request) {
	if clusterNode(r) == "" {
		apiError(w, http.StatusForbidden, "only a node of this deployment asks a member to leave (goatdb cluster leave, on a member's admin socket)")
		return
	}
	var in leaveRequest
	if err := readJSON(r, &in); err != nil || in.Name == "" {
		apiError(w, http.StatusBadRequest, "send {\"name\": MEMBER, \"dead\": BOOL}")
		return
	}
	s.clusterCall(w, r, "/v1/cluster/leave", in, func(ctx context.Context) error { return s.leave(ctx, in) })
}

// leave runs a departure on the leader: Leave, and for a dead member its
// handoff too.
func (s *Server) leave(ctx context.Context, in leaveRequest) error {
	if err := s.opts.Cluster.Leave(ctx, in.Name); err != nil {
		return err
	}
	if !in.Dead {
		return nil
	}
	v, _ := s.opts.Cluster.View()
	if m, ok := v.Members[in.Name]; !ok || m.State != cluster.Leaving {
		return nil // it was still joining: gone at once
	}
	return s.opts.Cluster.Handoff(ctx, in.Name, v.Epoch)
}

// Leave asks the cluster, through this member (forwarded to the leader),
// for member name to leave; dead says it will not come back, so its
// handoff is reported for it.
func (s *Server) Leave(ctx context.Context, name string, dead bool) error {
	if s.opts.Cluster == nil {
		return errors.New("server: Leave needs Options.Cluster")
	}
	in := leaveRequest{Name: name, Dead: dead}
	err := s.leave(ctx, in)
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.Known {
		err = s.toLeader(ctx, nl.Leader.URL, "/v1/cluster/leave", in)
	}
	return err
}

// ClusterView returns the membership as this member knows it and the
// leader's name ("" if none is known), or false outside a cluster.
func (s *Server) ClusterView() (cluster.View, string, bool) {
	if s.opts.Cluster == nil {
		return cluster.View{}, "", false
	}
	v, _ := s.opts.Cluster.View()
	l, _ := s.opts.Cluster.Leader()
	return v, l.Name, true
}

func (s *Server) handleClusterView(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	if !p.Node && !p.Root && !slices.Contains(p.Roles, AdminRole) {
		apiError(w, http.StatusForbidden, "the cluster's membership is for its nodes and admins")
		return
	}
	v, _ := s.opts.Cluster.View()
	leader, _ := s.opts.Cluster.Leader()
	writeJSON(w, struct {
		cluster.View
		Leader string `json:"leader,omitempty"`
	}{v, leader.Name})
}

type joinRequest struct {
	Name string `json:"name,omitempty"` // set when a member forwards another's
	URL  string `json:"url"`
	Raft string `json:"raft"`
}

type handoffRequest struct {
	Name  string `json:"name,omitempty"` // set when a member forwards another's
	Epoch uint64 `json:"epoch"`
}

func (s *Server) handleClusterJoin(w http.ResponseWriter, r *http.Request) {
	name := clusterNode(r)
	if name == "" {
		apiError(w, http.StatusForbidden, "only a node of this deployment joins the cluster")
		return
	}
	var in joinRequest
	if err := readJSON(r, &in); err != nil {
		apiError(w, http.StatusBadRequest, "%v; send {\"url\": URL, \"raft\": HOST:PORT}", err)
		return
	}
	if _, err := goatdb.NormalizeServerURL(in.URL); err != nil || in.Raft == "" {
		apiError(w, http.StatusBadRequest, "join needs the node's URL and raft address")
		return
	}
	if in.Name == "" {
		in.Name = name
	}
	m := cluster.Member{Name: in.Name, URL: in.URL, Raft: in.Raft}
	s.clusterCall(w, r, "/v1/cluster/join", in, func(ctx context.Context) error { return s.opts.Cluster.Join(ctx, m) })
}

func (s *Server) handleClusterHandoff(w http.ResponseWriter, r *http.Request) {
	name := clusterNode(r)
	if name == "" {
		apiError(w, http.StatusForbidden, "only a node of this deployment reports a handoff")
		return
	}
	var in handoffRequest
	if err := readJSON(r, &in); err != nil {
		apiError(w, http.StatusBadRequest, "%v; send {\"epoch\": N}", err)
		return
	}
	if in.Name == "" {
		in.Name = name
	}
	s.clusterCall(w, r, "/v1/cluster/handoff", in, func(ctx context.Context) error {
		return s.opts.Cluster.Handoff(ctx, in.Name, in.Epoch)
	})
}

// clusterCall runs fn on the leader: here if this member leads, else by
// forwarding body, which names the requesting node, to the leader's route
// as this node. A node names another only when it forwards: nodes are
// trusted principals of the deployment (they relay every commit), so the
// leader takes the name a node gives.
func (s *Server) clusterCall(w http.ResponseWriter, r *http.Request, route string, body any, fn func(context.Context) error) {
	err := fn(r.Context())
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.Known {
		err = s.toLeader(r.Context(), nl.Leader.URL, route, body)
	}
	switch {
	case err == nil:
		writeJSON(w, struct{}{})
	case errors.Is(err, cluster.ErrNotLeader):
		w.Header().Set("Retry-After", "1")
		apiError(w, http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, cluster.ErrStaleEpoch), errors.Is(err, cluster.ErrMember):
		apiError(w, http.StatusConflict, "%v", err)
	default:
		w.Header().Set("Retry-After", "1")
		apiError(w, http.StatusServiceUnavailable, "%v", err)
	}
}

// nodeClient returns a client of the member at url, signed as this node.
func (s *Server) nodeClient(url string) *transport.Client {
	id := s.auth.Identity
	return transport.New(transport.Config{URL: strings.TrimRight(url, "/"), Key: id.NodeKey,
		NodeCert: base64.StdEncoding.EncodeToString(id.Node.Encode()), NodeRules: s.auth.Rules.Fingerprint(),
		NodeHistory: nodeHistory(s.GCPolicy().Kept()), Logger: s.log})
}

func nodeHistory(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprint(int64(d / time.Second))
}

// toLeader posts body to route on the member at url, as this node.
func (s *Server) toLeader(ctx context.Context, url, route string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := s.nodeClient(url).Do(ctx, http.MethodPost, route, b, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s on %s: %d %s", route, url, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// routeSections takes out of a client's sync request the sections of
// repositories this member does not own in the placement in force, and
// answers each with StatusError and syncproto.MovedPrefix naming its
// owners (by URL): their commits are not stored here, so nothing is
// acknowledged that the owners lack. Requests of nodes and the root
// (handoffs, replication among owners) are not routed. It returns the
// request left to serve and the answers by section index.
func (s *Server) routeSections(ctx context.Context, req *syncproto.Request) (*syncproto.Request, map[int]syncproto.RepoResponse) {
	if _, ok := trusted(ctx); ok {
		return req, nil
	}
	v, _ := s.opts.Cluster.View()
	if len(v.Members) == 0 {
		return req, nil
	}
	self := s.auth.Identity.Node.Node()
	var moved map[int]syncproto.RepoResponse
	keep := req.Repos[:0:0]
	for i, q := range req.Repos {
		owners := v.OwnersNow(q.Path)
		if strings.HasPrefix(q.Path, "/sys/") || len(owners) == 0 || slices.Contains(owners, self) {
			keep = append(keep, q)
			continue
		}
		urls := make([]string, 0, len(owners))
		for _, o := range owners {
			urls = append(urls, v.Members[o].URL)
		}
		if moved == nil {
			moved = map[int]syncproto.RepoResponse{}
		}
		moved[i] = syncproto.RepoResponse{Path: q.Path, Status: syncproto.StatusError,
			Message: syncproto.MovedPrefix + strings.Join(urls, " ")}
	}
	if moved == nil {
		return req, nil
	}
	out := *req
	out.Repos = keep
	return &out, moved
}

// mergeRouted puts the answers of routed sections back in the request's
// order around the served ones.
func mergeRouted(resp *syncproto.Response, moved map[int]syncproto.RepoResponse, n int) *syncproto.Response {
	if moved == nil {
		return resp
	}
	out := &syncproto.Response{Repos: make([]syncproto.RepoResponse, 0, n)}
	j := 0
	for i := range n {
		if a, ok := moved[i]; ok {
			out.Repos = append(out.Repos, a)
			continue
		}
		out.Repos = append(out.Repos, resp.Repos[j])
		j++
	}
	return out
}

// redirectUnowned answers a JSON API request about repository rp that
// this member does not own with 307 to its first owner (the same path and
// query), naming the owners, and returns true; else false. A token is
// this member's: at the owner, log in there (POST /v1/auth/token).
func (s *Server) redirectUnowned(w http.ResponseWriter, r *http.Request, rp string) bool {
	if s.opts.Cluster == nil || strings.HasPrefix(rp, "/sys/") {
		return false
	}
	if _, ok := trusted(r.Context()); ok {
		return false
	}
	v, _ := s.opts.Cluster.View()
	owners := v.OwnersNow(rp)
	if len(owners) == 0 || slices.Contains(owners, s.NodeName()) {
		return false
	}
	urls := make([]string, 0, len(owners))
	for _, o := range owners {
		urls = append(urls, v.Members[o].URL)
	}
	w.Header().Set("Location", strings.TrimRight(urls[0], "/")+r.URL.RequestURI())
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTemporaryRedirect)
	b, _ := json.Marshal(struct {
		Error  string   `json:"error"`
		Reason string   `json:"reason"`
		Owners []string `json:"owners"`
	}{"moved", fmt.Sprintf("repository %s lives on %s (a sharded cluster); ask an owner (tokens are per member: log in there)", rp, strings.Join(urls, " ")), urls})
	w.Write(append(b, '\n'))
	return true
}

// NodeName returns this server's node name (its node certificate's), or
// "" without authentication.
func (s *Server) NodeName() string {
	if s.auth == nil {
		return ""
	}
	return s.auth.Identity.Node.Node()
}

// JoinCluster asks the member at url (any member: it forwards to the
// leader) to add this server to the cluster, with this server's own URL
// and raft address.
func (s *Server) JoinCluster(ctx context.Context, memberURL, selfURL, raftAddr string) error {
	if s.opts.Cluster == nil {
		return errors.New("server: JoinCluster needs Options.Cluster")
	}
	return s.toLeader(ctx, memberURL, "/v1/cluster/join", joinRequest{URL: selfURL, Raft: raftAddr})
}

// handoffLoop hands this member's repositories over whenever the
// membership has a change pending that it has not handed off for, until
// stop is closed.
func (s *Server) handoffLoop(stop <-chan struct{}) {
	self := s.auth.Identity.Node.Node()
	base, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	go func() {
		select {
		case <-stop:
			cancelAll() // a handoff under way ends with the server
		case <-base.Done():
		}
	}()
	var owners *goatdb.Syncer // replication among co-owners, for ownersEpoch
	var ownersEpoch uint64
	defer func() {
		if owners != nil {
			s.peers.Store(nil)
			if err := owners.Stop(); err != nil {
				s.log.Warn("cluster: stop replication among owners", "err", err)
			}
		}
	}()
	var reported uint64 // the epoch this member last reported its handoff for
	for {
		v, changed := s.opts.Cluster.View()
		retry := false
		if !v.Pending() && len(v.Members) > 0 && v.Epoch != ownersEpoch {
			next, err := s.replicateOwners(v, self)
			if err != nil {
				s.log.Warn("cluster: replication among owners", "epoch", v.Epoch, "err", err)
				retry = true
			} else {
				if owners != nil {
					if err := owners.Stop(); err != nil {
						s.log.Warn("cluster: stop replication among owners", "err", err)
					}
				}
				owners, ownersEpoch = next, v.Epoch
				s.peers.Store(owners)
			}
		}
		switch {
		case v.Pending() && v.Handoffs[self] != v.Epoch && reported != v.Epoch && slices.Contains(v.Serving(), self):
			// (reported: the leader took this member's report, which its
			// own copy of the membership may not show yet)
			ctx, cancel := context.WithTimeout(base, 5*time.Minute)
			if err := s.handOff(ctx, v, self); err != nil {
				s.log.Warn("cluster: handoff", "epoch", v.Epoch, "err", err)
				retry = true
			} else {
				reported = v.Epoch
			}
			cancel()
		case !v.Pending() && len(v.Members) > 0:
			ctx, cancel := context.WithTimeout(base, 5*time.Minute)
			if err := s.dropUnowned(ctx, v, self); err != nil {
				s.log.Info("cluster: repositories left to drop", "epoch", v.Epoch, "err", err)
				retry = true
			}
			cancel()
		}
		wait := time.Minute
		if retry {
			wait = 2 * time.Second
		}
		select {
		case <-stop:
			return
		case <-changed:
		case <-time.After(wait):
		}
	}
}

// replicateOwners starts the replication of this member's repositories
// with their co-owners in settled view v: a Syncer of every other serving
// member that syncs a repository with a member only if both own it (the
// accounts with every member), following their announcements of such
// repositories. It returns nil when this member is alone.
func (s *Server) replicateOwners(v cluster.View, self string) (*goatdb.Syncer, error) {
	byURL := map[string]string{}
	var urls []string
	for _, name := range v.Serving() {
		if name == self {
			continue
		}
		u, err := goatdb.NormalizeServerURL(v.Members[name].URL)
		if err != nil {
			return nil, err
		}
		byURL[u] = name
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, nil
	}
	var po goatdb.SyncOptions
	if s.opts.PeerSync != nil {
		po = *s.opts.PeerSync
	}
	po.Follow, po.Node, po.Failover = true, s.nodeAuth(), false
	po.Filter = func(url, path string) bool {
		if strings.HasPrefix(path, "/sys/") {
			return true
		}
		o := v.OwnersNow(path)
		return slices.Contains(o, self) && slices.Contains(o, byURL[url])
	}
	return s.db.StartSync(urls, &po)
}

// dropUnowned drops the repositories this member holds but does not own
// in the placement in force (v settled), each once its owners hold all of
// it: it syncs it to each owner, and drops it only if nothing was written
// here meanwhile (DB.DropRepo's position check), so no commit is lost. It
// returns the repositories it could not drop yet (their owners did not
// answer, or they changed or were in use), to try again.
func (s *Server) dropUnowned(ctx context.Context, v cluster.View, self string) error {
	repos, err := s.db.Repos()
	if err != nil {
		return err
	}
	node := s.nodeAuth()
	var errs []error
	for _, rp := range repos {
		owners := v.OwnersNow(rp)
		if strings.HasPrefix(rp, "/sys/") || len(owners) == 0 || slices.Contains(owners, self) {
			continue
		}
		r, release, err := s.db.AcquireExisting(rp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		epoch, seq := r.Epoch(), r.Seq()
		release()
		for _, name := range owners {
			if _, err = s.db.SyncAsNode(ctx, v.Members[name].URL, node, rp); err != nil {
				break
			}
		}
		if err == nil {
			err = s.db.DropRepo(rp, epoch, seq)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rp, err))
			continue
		}
		s.metrics.droppedRepos.Inc()
		s.log.Info("cluster: dropped a repository its owners hold", "repo", rp, "owners", owners)
	}
	return errors.Join(errs...)
}

// firstStaying returns the first of owners that is not leaving, or "".
func firstStaying(v cluster.View, owners []string) string {
	for _, o := range owners {
		if v.Members[o].State != cluster.Leaving {
			return o
		}
	}
	return ""
}

// nodeAuth is this server's credentials as a node of its deployment.
func (s *Server) nodeAuth() *goatdb.NodeAuth {
	return &goatdb.NodeAuth{Key: s.auth.Identity.NodeKey, Certificate: s.auth.Identity.Node.Encode(),
		History: s.GCPolicy().Kept(), Rules: s.auth.Rules.Fingerprint()}
}

// handOff syncs every repository this member holds to the owners it gains
// in v's next placement, then reports the handoff for v's epoch.
func (s *Server) handOff(ctx context.Context, v cluster.View, self string) error {
	repos, err := s.db.Repos()
	if err != nil {
		return err
	}
	node := s.nodeAuth()
	for _, rp := range repos {
		now, next := v.OwnersNow(rp), v.OwnersNext(rp)
		if strings.HasPrefix(rp, "/sys/") {
			now, next = v.Serving(), v.Next() // accounts live on every member
		}
		if first := firstStaying(v, now); first != self {
			// Its first owner that stays hands it over (the others hold
			// the same commits; a leaving one may be dead); a copy this
			// member holds without owning it goes to its owners before
			// it is dropped (dropUnowned).
			continue
		}
		for _, name := range next {
			if name == self || slices.Contains(now, name) {
				continue
			}
			m := v.Members[name]
			st, err := s.db.SyncAsNode(ctx, m.URL, node, rp)
			s.metrics.handoffBytes.Add(int(st.BytesSent + st.BytesReceived))
			if err != nil {
				return fmt.Errorf("hand %s to %s: %w", rp, name, err)
			}
			s.metrics.handoffRepos.Inc()
		}
	}
	err = s.opts.Cluster.Handoff(ctx, self, v.Epoch)
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.Known {
		err = s.toLeader(ctx, nl.Leader.URL, "/v1/cluster/handoff", handoffRequest{Epoch: v.Epoch})
	}
	if err == nil {
		s.log.Info("cluster: handed off", "epoch", v.Epoch, "repos", len(repos))
	}
	return err
}

// ClusterStatus is the admin socket's answer to GET /cluster: the
// membership as this member knows it, and who leads.
type ClusterStatus struct {
	Self   string       `json:"self"`
	Leader string       `json:"leader,omitempty"`
	View   cluster.View `json:"view"`
}

// clusterAdminRoutes adds the operator's cluster routes to the admin
// socket: GET /cluster and POST /cluster/leave {"name", "dead"}.
func (s *Server) clusterAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		v, leader, ok := s.ClusterView()
		if !ok {
			httpError(w, http.StatusConflict, "this server is not a member of a cluster (serve --cluster-raft)")
			return
		}
		writeJSON(w, ClusterStatus{Self: s.NodeName(), Leader: leader, View: v})
	})
	mux.HandleFunc("POST /cluster/leave", func(w http.ResponseWriter, r *http.Request) {
		var in leaveRequest
		if err := readJSON(r, &in); err != nil || in.Name == "" {
			httpError(w, http.StatusBadRequest, "send {\"name\": MEMBER, \"dead\": BOOL}")
			return
		}
		if s.opts.Cluster == nil {
			httpError(w, http.StatusConflict, "this server is not a member of a cluster (serve --cluster-raft)")
			return
		}
		if err := s.Leave(r.Context(), in.Name, in.Dead); err != nil {
			httpError(w, http.StatusConflict, "%v", err)
			return
		}
		writeJSON(w, struct{}{})
	})
}

// Cluster asks the server for its cluster's membership.
func (c *AdminClient) Cluster() (ClusterStatus, error) {
	var out ClusterStatus
	err := c.call(http.MethodGet, "/cluster", nil, &out)
	return out, err
}

// LeaveCluster asks the cluster for member name to leave (dead: it will
// not come back, and its handoff is reported for it).
func (c *AdminClient) LeaveCluster(name string, dead bool) error {
	return c.call(http.MethodPost, "/cluster/leave", leaveRequest{Name: name, Dead: dead}, nil)
}
