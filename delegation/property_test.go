package delegation_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

// The property test builds random graphs over the default Agent IAM schema
// and random delegation chains on them, then compares every check and
// lookup through a delegation with an oracle that the test computes on its
// own: the chain, scopes, containment, expiry and revocation come from the
// test's model of what it created, and only the principals' direct checks
// come from the engine. Rerun a failure with
//
//	go test ./delegation -run TestChainIntersectionProperty -seed N

var (
	propertySeed   = flag.Int64("seed", 0, "seed of the delegation property test; 0 picks one from the clock")
	propertyRounds = flag.Int("rounds", 60, "random graphs the delegation property test builds")
)

var propertyPermissions = []string{"read", "write"}

// propertyStart is the fake time at which every random world begins.
var propertyStart = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// errorClass names the sentinel a refused delegation.Create wraps.
type errorClass string

const (
	classInvalid errorClass = "invalid"
	classNotHeld errorClass = "not held"
	classLimit   errorClass = "limit"
)

func classOf(err error) errorClass {
	switch {
	case errors.Is(err, delegation.ErrInvalid):
		return classInvalid
	case errors.Is(err, delegation.ErrNotHeld):
		return classNotHeld
	case errors.Is(err, delegation.ErrLimit):
		return classLimit
	}
	return errorClass("unexpected: " + err.Error())
}

// modelDelegation is the test's own record of a created delegation, with
// the limits it inherited worked out by the test.
type modelDelegation struct {
	id string
	// parent is the parent delegation's id, or "" for a root.
	parent string
	// root is the delegator of a root delegation.
	root      graph.SubjectRef
	delegate  string
	scope     []delegation.Scope
	expiresAt time.Time
	maxDepth  int
	maxFanout int
	children  []string
	revoked   bool
}

// propertyStats counts what the property test did, over every round.
type propertyStats struct {
	created      int
	refused      map[errorClass]int
	checks       int
	allowed      int
	deniedScope  int
	deniedChain  int
	lookups      int
	lookupHits   int
	longestChain int
}

// world is one random graph with the test's model of it.
type world struct {
	t      *testing.T
	rng    *rand.Rand
	now    time.Time
	g      *graph.Graph
	schema *schema.Schema
	stats  *propertyStats

	folders  []string
	datasets []string
	users    []string
	agents   []string
	// folderParents and datasetFolders are the containment edges written.
	folderParents  map[string][]string
	datasetFolders map[string][]string
	suspended      map[string]bool

	delegations map[string]*modelDelegation
	order       []string
	// requests numbers the ids of the delegations requested.
	requests int
}

func TestChainIntersectionProperty(t *testing.T) {
	seed := *propertySeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun with -seed %d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	compiled, err := schema.Compile(context.Background(), schema.AgentIAM)
	if err != nil {
		t.Fatalf("compile the default schema: %v", err)
	}
	stats := &propertyStats{refused: map[errorClass]int{}}
	for round := 0; round < *propertyRounds && !t.Failed(); round++ {
		w := newWorld(t, rng, compiled, stats)
		w.buildGraph()
		w.buildChains()
		w.mutate()
		w.verifyChecks(round)
		w.verifyLookups(round)
	}
	t.Logf("seed %d: %d rounds, %d delegations created, refused %v, longest chain %d links",
		seed, *propertyRounds, stats.created, stats.refused, stats.longestChain)
	t.Logf("seed %d: %d checks (%d allowed, %d denied only by scope, %d denied by an invalid chain), %d lookups returning %d resources",
		seed, stats.checks, stats.allowed, stats.deniedScope, stats.deniedChain, stats.lookups, stats.lookupHits)
	if stats.allowed == 0 || stats.deniedScope == 0 {
		t.Errorf("the random worlds never exercised both outcomes: %d allowed, %d denied only by scope", stats.allowed, stats.deniedScope)
	}
	if stats.longestChain < 3 {
		t.Errorf("the longest chain created has %d links; the generator should reach at least 3", stats.longestChain)
	}
}

func newWorld(t *testing.T, rng *rand.Rand, compiled *schema.Schema, stats *propertyStats) *world {
	w := &world{
		t: t, rng: rng, now: propertyStart, schema: compiled, stats: stats,
		folderParents: map[string][]string{}, datasetFolders: map[string][]string{},
		suspended: map[string]bool{}, delegations: map[string]*modelDelegation{},
	}
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	w.g = g
	w.update("write the schema", func(tx *graph.Tx) error {
		tx.SetSchema(schema.AgentIAM)
		return nil
	})
	return w
}

func (w *world) update(what string, fn func(tx *graph.Tx) error) {
	w.t.Helper()
	if _, err := w.g.Update(context.Background(), fn); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) snapshot() graph.Snapshot { return w.g.HeadSnapshot(w.now) }

func (w *world) pick(items []string) string { return items[w.rng.Intn(len(items))] }

func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

func touch(tx *graph.Tx, resourceType, resourceID, relation string, subject graph.SubjectRef) {
	tx.Touch(&graph.Relationship{Key: graph.Key{
		ResourceType: resourceType, ResourceID: resourceID, Relation: relation, Subject: subject,
	}})
}

// buildGraph writes folders with parents, datasets in folders, users,
// agents with departments and roles, and random reader and writer grants.
func (w *world) buildGraph() {
	for i := range 3 + w.rng.Intn(4) {
		f := fmt.Sprintf("f%d", i)
		w.folders = append(w.folders, f)
		if i > 0 && w.chance(0.7) {
			w.folderParents[f] = append(w.folderParents[f], w.folders[w.rng.Intn(i)])
			if i > 1 && w.chance(0.15) {
				second := w.folders[w.rng.Intn(i)]
				if second != w.folderParents[f][0] {
					w.folderParents[f] = append(w.folderParents[f], second)
				}
			}
		}
	}
	for i := range 4 + w.rng.Intn(5) {
		d := fmt.Sprintf("d%d", i)
		w.datasets = append(w.datasets, d)
		if w.chance(0.8) {
			w.datasetFolders[d] = append(w.datasetFolders[d], w.pick(w.folders))
			if second := w.pick(w.folders); w.chance(0.15) && second != w.datasetFolders[d][0] {
				w.datasetFolders[d] = append(w.datasetFolders[d], second)
			}
		}
	}
	for i := range 2 + w.rng.Intn(2) {
		w.users = append(w.users, fmt.Sprintf("u%d", i))
	}
	for i := range 4 + w.rng.Intn(3) {
		w.agents = append(w.agents, fmt.Sprintf("a%d", i))
	}
	departments := []string{"sales", "finance"}
	roles := []string{"analyst", "auditor"}

	w.update("write the random graph", func(tx *graph.Tx) error {
		for f, parents := range w.folderParents {
			for _, p := range parents {
				touch(tx, "folder", f, "parent", graph.SubjectRef{Type: "folder", ID: p})
			}
		}
		for d, folders := range w.datasetFolders {
			for _, f := range folders {
				touch(tx, "dataset", d, "folder", graph.SubjectRef{Type: "folder", ID: f})
			}
		}
		for _, u := range w.users {
			if w.chance(0.4) {
				touch(tx, "department", w.pick(departments), "member", graph.SubjectRef{Type: "user", ID: u})
			}
			if w.chance(0.4) {
				touch(tx, "role", w.pick(roles), "assignee", graph.SubjectRef{Type: "user", ID: u})
			}
		}
		for _, id := range w.agents {
			a := &identity.Agent{ID: id, Owner: w.pick(w.users), PublicKey: w.publicKey()}
			if w.chance(0.6) {
				a.Department = w.pick(departments)
			}
			if w.chance(0.6) {
				a.Role = w.pick(roles)
			}
			if err := identity.Create(tx, a, w.now); err != nil {
				return fmt.Errorf("create agent %q: %w", id, err)
			}
		}
		subjects := w.grantSubjects(departments, roles)
		for _, typ := range []string{"folder", "dataset"} {
			ids := w.folders
			if typ == "dataset" {
				ids = w.datasets
			}
			for _, id := range ids {
				for _, relation := range []string{"reader", "writer"} {
					for w.chance(0.55) {
						touch(tx, typ, id, relation, subjects[w.rng.Intn(len(subjects))])
					}
				}
			}
		}
		return nil
	})
}

// grantSubjects lists every subject a reader or writer grant may name.
func (w *world) grantSubjects(departments, roles []string) []graph.SubjectRef {
	var out []graph.SubjectRef
	for _, u := range w.users {
		out = append(out, graph.SubjectRef{Type: "user", ID: u})
	}
	for _, a := range w.agents {
		out = append(out, graph.SubjectRef{Type: "agent", ID: a})
	}
	for _, d := range departments {
		out = append(out, graph.SubjectRef{Type: "department", ID: d, Relation: "member"})
	}
	for _, r := range roles {
		out = append(out, graph.SubjectRef{Type: "role", ID: r, Relation: "assignee"})
	}
	return out
}

// publicKey derives an Ed25519 key from the seeded generator, so a seed
// reproduces the whole world.
func (w *world) publicKey() ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	w.rng.Read(seed)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

// resources lists every folder and dataset.
func (w *world) resources() []graph.ObjectRef {
	var out []graph.ObjectRef
	for _, f := range w.folders {
		out = append(out, graph.ObjectRef{Type: "folder", ID: f})
	}
	for _, d := range w.datasets {
		out = append(out, graph.ObjectRef{Type: "dataset", ID: d})
	}
	return out
}

// buildChains creates random chains of 1 to 5 hops through
// delegation.Create, sometimes branching from an existing delegation, and
// checks every rejection against the rules that the model expects to apply.
func (w *world) buildChains() {
	for range 3 + w.rng.Intn(5) {
		var parent *modelDelegation
		delegator := ""
		if open := w.redelegable(); len(open) > 0 && w.chance(0.3) {
			parent = w.delegations[w.pick(open)]
			delegator = "delegation:" + parent.id
		} else if w.chance(0.3) {
			delegator = "user:" + w.pick(w.users)
		} else {
			delegator = "agent:" + w.pick(w.agents)
		}
		hops := 1 + w.rng.Intn(5)
		for hop := 0; hop < hops; hop++ {
			// Mostly stop where the chain allows no further hop, but
			// sometimes ask anyway so that the depth limit is tested.
			if parent != nil && parent.maxDepth == 0 && w.chance(0.8) {
				break
			}
			created := w.tryCreate(delegator, parent)
			if created == nil {
				break
			}
			parent = created
			delegator = "delegation:" + created.id
		}
	}
}

// redelegable lists the delegations that allow at least one more hop.
func (w *world) redelegable() []string {
	var out []string
	for _, id := range w.order {
		if w.delegations[id].maxDepth > 0 {
			out = append(out, id)
		}
	}
	return out
}

// tryCreate sends up to three random requests from delegator and returns
// the first delegation created, or nil.
func (w *world) tryCreate(delegator string, parent *modelDelegation) *modelDelegation {
	for range 3 {
		req := w.randomRequest(delegator, parent)
		want := w.refusalReasons(req, parent)
		before := w.g.Head()
		var created *delegation.Delegation
		_, err := w.g.Update(context.Background(), func(tx *graph.Tx) error {
			var err error
			created, err = delegation.Create(w.schema, tx, req, w.now)
			return err
		})
		if err != nil {
			class := classOf(err)
			w.stats.refused[class]++
			if _, ok := want[class]; !ok {
				w.t.Errorf("Create %s: refused as %s (%v), but the model expects %s", describeRequest(req), class, err, describeReasons(want))
			}
			if after := w.g.Head(); after != before {
				w.t.Errorf("Create %s: refused, but the head moved from %d to %d", describeRequest(req), before, after)
			}
			continue
		}
		if len(want) > 0 {
			w.t.Errorf("Create %s: succeeded, but the model expects a refusal: %s", describeRequest(req), describeReasons(want))
		}
		return w.record(req, parent, created)
	}
	return nil
}

// randomRequest returns a request that is usually valid: it may delegate
// to an agent already in the chain, exceed an inherited limit, or name a
// resource the delegator does not hold, but its values are well formed.
func (w *world) randomRequest(delegator string, parent *modelDelegation) delegation.Request {
	w.requests++
	req := delegation.Request{
		ID:        fmt.Sprintf("g%d", w.requests),
		Delegator: delegator,
		Delegate:  w.randomDelegate(delegator, parent),
	}
	for range 1 + w.rng.Intn(3) {
		req.Scope = append(req.Scope, w.randomScope(delegator, parent))
	}
	switch {
	case parent == nil && w.chance(0.85):
		req.MaxDepth = 1 + w.rng.Intn(5)
	case parent == nil:
		req.MaxDepth = 0
	case w.chance(0.8):
		req.MaxDepth = max(parent.maxDepth-1, 0)
	default:
		req.MaxDepth = w.rng.Intn(parent.maxDepth + 1)
	}
	if w.chance(0.4) {
		req.MaxFanout = 1 + w.rng.Intn(3)
	}
	if w.chance(0.4) {
		hours := 1 + w.rng.Intn(48)
		if parent != nil && !parent.expiresAt.IsZero() && w.chance(0.8) {
			hours = 1 + w.rng.Intn(int(parent.expiresAt.Sub(w.now).Hours()))
		}
		req.ExpiresAt = w.now.Add(time.Duration(hours) * time.Hour)
	}
	return req
}

// randomDelegate returns an agent, most often one not yet in the chain.
func (w *world) randomDelegate(delegator string, parent *modelDelegation) string {
	if w.chance(0.15) {
		return w.pick(w.agents)
	}
	inChain := []string{strings.TrimPrefix(delegator, "agent:")}
	if parent != nil {
		for _, p := range w.principals(parent.id) {
			inChain = append(inChain, p.ID)
		}
	}
	var fresh []string
	for _, a := range w.agents {
		if !slices.Contains(inChain, a) {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) == 0 {
		return w.pick(w.agents)
	}
	return w.pick(fresh)
}

// randomScope returns one scope item: an exact resource (most often one
// the delegator holds), every object of a type, or a folder's contents.
func (w *world) randomScope(delegator string, parent *modelDelegation) delegation.Scope {
	perms := []string{w.pick(propertyPermissions)}
	if w.chance(0.3) {
		perms = []string{"read", "write"}
	}
	sc := delegation.Scope{Permissions: perms}
	held := w.heldResources(delegator, parent, perms)
	exact := 0.55
	if len(held) == 0 {
		exact = 0.2
	}
	switch r := w.rng.Float64(); {
	case r < exact:
		if len(held) > 0 && w.chance(0.85) {
			sc.Resource = held[w.rng.Intn(len(held))]
		} else {
			all := w.resources()
			o := all[w.rng.Intn(len(all))]
			sc.Resource = o.Type + ":" + o.ID
		}
	case r < exact+(1-exact)/2:
		sc.Resource = w.pick([]string{"folder", "dataset"}) + ":*"
	default:
		sc.Resource = "folder:" + w.pick(w.folders) + "/..."
	}
	return sc
}

// heldResources lists the resources on which delegator holds every one of
// perms, by the model.
func (w *world) heldResources(delegator string, parent *modelDelegation, perms []string) []string {
	snap := w.snapshot()
	var out []string
	for _, o := range w.resources() {
		all := true
		for _, p := range perms {
			if !w.delegatorHolds(snap, delegator, parent, o, p) {
				all = false
				break
			}
		}
		if all {
			out = append(out, o.Type+":"+o.ID)
		}
	}
	return out
}

func (w *world) delegatorHolds(snap graph.Snapshot, delegator string, parent *modelDelegation, o graph.ObjectRef, permission string) bool {
	if parent != nil {
		return w.expected(snap, parent.id, o, permission).allowed
	}
	typ, id, _ := strings.Cut(delegator, ":")
	return w.directHas(snap, graph.SubjectRef{Type: typ, ID: id}, o, permission)
}

// refusalReasons returns every error class that a rule of delegation.Create
// would raise for req, by the model. Create stops at the first rule that
// fails, so a refusal must carry one of them, and an empty set means the
// request must succeed.
func (w *world) refusalReasons(req delegation.Request, parent *modelDelegation) map[errorClass][]string {
	reasons := map[errorClass][]string{}
	add := func(c errorClass, format string, args ...any) {
		reasons[c] = append(reasons[c], fmt.Sprintf(format, args...))
	}
	if req.Delegator == "agent:"+req.Delegate {
		add(classInvalid, "delegation to itself")
	}
	snap := w.snapshot()
	if parent != nil {
		if parent.maxDepth < 1 {
			add(classLimit, "parent %s allows no re-delegation", parent.id)
		}
		if req.MaxDepth > parent.maxDepth-1 {
			add(classLimit, "max depth %d over the parent's %d", req.MaxDepth, parent.maxDepth)
		}
		if req.MaxFanout > parent.maxFanout {
			add(classLimit, "max fan-out %d over the parent's %d", req.MaxFanout, parent.maxFanout)
		}
		if live := w.liveChildren(parent); live >= parent.maxFanout {
			add(classLimit, "parent %s has %d live children", parent.id, live)
		}
		if !req.ExpiresAt.IsZero() && !parent.expiresAt.IsZero() && req.ExpiresAt.After(parent.expiresAt) {
			add(classLimit, "expiry after the parent's")
		}
		for _, p := range w.principals(parent.id) {
			if p == (graph.SubjectRef{Type: "agent", ID: req.Delegate}) {
				add(classInvalid, "cycle through %s", p)
			}
		}
		for _, sc := range req.Scope {
			if isExact(sc.Resource) {
				for _, p := range sc.Permissions {
					if !w.covers(parent.scope, objectOf(sc.Resource), p) {
						add(classInvalid, "%s on %s outside the parent's scope", p, sc.Resource)
					}
				}
			}
		}
	}
	for _, sc := range req.Scope {
		if isExact(sc.Resource) {
			for _, p := range sc.Permissions {
				if !w.delegatorHolds(snap, req.Delegator, parent, objectOf(sc.Resource), p) {
					add(classNotHeld, "%s does not hold %s on %s", req.Delegator, p, sc.Resource)
				}
			}
		}
	}
	return reasons
}

func (w *world) liveChildren(parent *modelDelegation) int {
	live := 0
	for _, c := range parent.children {
		if w.live(c) {
			live++
		}
	}
	return live
}

// record adds a created delegation to the model, checking the limits the
// stored record inherited.
func (w *world) record(req delegation.Request, parent *modelDelegation, created *delegation.Delegation) *modelDelegation {
	m := &modelDelegation{
		id: created.ID, delegate: req.Delegate, scope: req.Scope,
		expiresAt: req.ExpiresAt, maxDepth: req.MaxDepth, maxFanout: req.MaxFanout,
	}
	if parent == nil {
		typ, id, _ := strings.Cut(req.Delegator, ":")
		m.root = graph.SubjectRef{Type: typ, ID: id}
		if m.maxFanout == 0 {
			m.maxFanout = delegation.DefaultMaxFanout
		}
	} else {
		m.parent = parent.id
		parent.children = append(parent.children, m.id)
		if m.maxFanout == 0 {
			m.maxFanout = parent.maxFanout
		}
		if m.expiresAt.IsZero() {
			m.expiresAt = parent.expiresAt
		}
	}
	if !created.ExpiresAt.Equal(m.expiresAt) {
		w.t.Errorf("delegation %s: stored expiry %v, the model expects %v", m.id, created.ExpiresAt, m.expiresAt)
	}
	if created.MaxFanout != m.maxFanout {
		w.t.Errorf("delegation %s: stored max fan-out %d, the model expects %d", m.id, created.MaxFanout, m.maxFanout)
	}
	w.delegations[m.id] = m
	w.order = append(w.order, m.id)
	w.stats.created++
	w.stats.longestChain = max(w.stats.longestChain, len(w.links(m.id)))
	return m
}

// mutate sometimes suspends an agent, revokes a delegation or moves the
// clock forward, so that checks also meet chains that grant nothing.
func (w *world) mutate() {
	if w.chance(0.3) {
		id := w.pick(w.agents)
		w.update("suspend "+id, func(tx *graph.Tx) error {
			_, err := identity.Suspend(tx, id, "property test", w.now)
			return err
		})
		w.suspended[id] = true
	}
	if len(w.order) > 0 && w.chance(0.3) {
		id := w.pick(w.order)
		want := w.revokeInModel(id)
		var got []string
		w.update("revoke "+id, func(tx *graph.Tx) error {
			var err error
			got, err = delegation.Revoke(tx, id, w.now)
			return err
		})
		slices.Sort(got)
		if !slices.Equal(got, want) {
			w.t.Errorf("Revoke %s returned %v, the model expects %v", id, got, want)
		}
	}
	if w.chance(0.3) {
		w.now = w.now.Add(time.Duration(w.rng.Intn(60)) * time.Hour)
	}
}

// revokeInModel marks id and every descendant revoked and returns the ids
// that were not revoked before, sorted.
func (w *world) revokeInModel(id string) []string {
	var out []string
	queue := []string{id}
	for len(queue) > 0 {
		m := w.delegations[queue[0]]
		queue = append(queue[1:], m.children...)
		if !m.revoked {
			m.revoked = true
			out = append(out, m.id)
		}
	}
	slices.Sort(out)
	return out
}

// links returns the model's delegations from id up to the root.
func (w *world) links(id string) []*modelDelegation {
	var out []*modelDelegation
	for cur := id; cur != ""; cur = w.delegations[cur].parent {
		out = append(out, w.delegations[cur])
	}
	return out
}

// principals returns the root delegator, then each delegate from the root
// down to id's.
func (w *world) principals(id string) []graph.SubjectRef {
	links := w.links(id)
	out := []graph.SubjectRef{links[len(links)-1].root}
	for i := len(links) - 1; i >= 0; i-- {
		out = append(out, graph.SubjectRef{Type: "agent", ID: links[i].delegate})
	}
	return out
}

// live reports whether no link of id's chain is revoked or expired.
func (w *world) live(id string) bool {
	for _, l := range w.links(id) {
		if l.revoked || (!l.expiresAt.IsZero() && !w.now.Before(l.expiresAt)) {
			return false
		}
	}
	return true
}

func isExact(resource string) bool {
	return !strings.HasSuffix(resource, "/...") && !strings.HasSuffix(resource, ":*")
}

func objectOf(resource string) graph.ObjectRef {
	typ, id, _ := strings.Cut(strings.TrimSuffix(resource, "/..."), ":")
	return graph.ObjectRef{Type: typ, ID: id}
}

// covers reports whether a scope grants permission on o, by the model's
// own reading of the three scope forms.
func (w *world) covers(scope []delegation.Scope, o graph.ObjectRef, permission string) bool {
	for _, sc := range scope {
		if !slices.Contains(sc.Permissions, permission) {
			continue
		}
		switch {
		case strings.HasSuffix(sc.Resource, "/..."):
			if w.inside(objectOf(sc.Resource), o) {
				return true
			}
		case strings.HasSuffix(sc.Resource, ":*"):
			if strings.TrimSuffix(sc.Resource, ":*") == o.Type {
				return true
			}
		case sc.Resource == o.Type+":"+o.ID:
			return true
		}
	}
	return false
}

// inside reports whether o is container or lies below it through dataset
// folders and folder parents.
func (w *world) inside(container, o graph.ObjectRef) bool {
	seen := map[graph.ObjectRef]bool{}
	queue := []graph.ObjectRef{o}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == container {
			return true
		}
		if seen[cur] {
			continue
		}
		seen[cur] = true
		ups := w.folderParents[cur.ID]
		if cur.Type == "dataset" {
			ups = w.datasetFolders[cur.ID]
		}
		for _, up := range ups {
			queue = append(queue, graph.ObjectRef{Type: "folder", ID: up})
		}
	}
	return false
}

// policy is the server's policy at snap: the identity gate and delegation
// chains.
func (w *world) policy(snap graph.Snapshot) *engine.Policy {
	return delegation.Extend(identity.Policy(w.schema, snap, w.now), w.schema, snap, w.now)
}

// directHas checks subject's own permission with the server's policy.
func (w *world) directHas(snap graph.Snapshot, subject graph.SubjectRef, o graph.ObjectRef, permission string) bool {
	w.t.Helper()
	res, err := engine.Check(w.schema, snap, engine.Limits{}, engine.CheckRequest{
		Resource: o, Permission: permission, Subject: subject, Policy: w.policy(snap),
	})
	if err != nil {
		w.t.Fatalf("check %s %s %s: %v", o, permission, subject, err)
	}
	return res.Membership == engine.HasPermission
}

// expectation is the model's result for a check through a delegation,
// with the parts it is made of.
type expectation struct {
	allowed bool
	live    bool
	// lacking lists the principals without the permission.
	lacking []string
	// uncovered lists the links whose scope does not cover the check.
	uncovered []string
}

func (e expectation) String() string {
	return fmt.Sprintf("live %t, principals lacking it %v, links not covering it %v", e.live, e.lacking, e.uncovered)
}

// expected computes a check through delegation id from the model: the
// chain is live, every principal is active and has the permission itself,
// and every link's scope covers it.
func (w *world) expected(snap graph.Snapshot, id string, o graph.ObjectRef, permission string) expectation {
	e := expectation{live: w.live(id)}
	for _, p := range w.principals(id) {
		if (p.Type == "agent" && w.suspended[p.ID]) || !w.directHas(snap, p, o, permission) {
			e.lacking = append(e.lacking, p.String())
		}
	}
	for _, l := range w.links(id) {
		if !w.covers(l.scope, o, permission) {
			e.uncovered = append(e.uncovered, l.id)
		}
	}
	e.allowed = e.live && len(e.lacking) == 0 && len(e.uncovered) == 0
	return e
}

// verifyChecks compares every check through every delegation with the
// model, in both directions.
func (w *world) verifyChecks(round int) {
	snap := w.snapshot()
	policy := w.policy(snap)
	for _, id := range w.order {
		subject := graph.SubjectRef{Type: "delegation", ID: id}
		chain, err := delegation.Resolve(snap, id, w.now)
		if err != nil {
			w.t.Fatalf("round %d: resolve %s: %v", round, subject, err)
		}
		if live := w.live(id); live != (chain.Invalid == "") {
			w.t.Errorf("round %d: resolve %s: Invalid %q, but the model says live is %t", round, subject, chain.Invalid, live)
		} else if live && !slices.Equal(chain.Principals, w.principals(id)) {
			w.t.Errorf("round %d: resolve %s: principals %v, the model expects %v", round, subject, chain.Principals, w.principals(id))
		}
		for _, o := range w.resources() {
			for _, permission := range propertyPermissions {
				res, err := engine.CheckChain(w.schema, snap, engine.Limits{}, engine.CheckRequest{
					Resource: o, Permission: permission, Subject: subject, Policy: policy,
				})
				if err != nil {
					w.t.Fatalf("round %d: check %s %s %s: %v", round, o, permission, subject, err)
				}
				got := res.Membership == engine.HasPermission
				want := w.expected(snap, id, o, permission)
				w.stats.checks++
				switch {
				case got && !want.allowed:
					w.t.Errorf("round %d: %s has %s on %s through the delegation, but not every principal and scope allows it (%s)",
						round, subject, permission, o, want)
				case !got && want.allowed:
					w.t.Errorf("round %d: %s lacks %s on %s, but every principal has it and every scope covers it (limited by %q)",
						round, subject, permission, o, res.LimitedBy)
				}
				if got != (res.LimitedBy == "") {
					w.t.Errorf("round %d: %s %s on %s: allowed %t with LimitedBy %q", round, subject, permission, o, got, res.LimitedBy)
				}
				plain, err := engine.Check(w.schema, snap, engine.Limits{}, engine.CheckRequest{
					Resource: o, Permission: permission, Subject: subject, Policy: policy,
				})
				if err != nil {
					w.t.Fatalf("round %d: check %s %s %s: %v", round, o, permission, subject, err)
				}
				if plain.Membership != res.Membership {
					w.t.Errorf("round %d: %s %s on %s: Check returned %s, CheckChain %s", round, subject, permission, o, plain.Membership, res.Membership)
				}
				switch {
				case want.allowed:
					w.stats.allowed++
				case !want.live:
					w.stats.deniedChain++
				case len(want.lacking) == 0:
					w.stats.deniedScope++
				}
			}
		}
	}
}

// verifyLookups compares LookupResources through every delegation with
// the intersection of the principals' own lookups, filtered by every
// link's scope.
func (w *world) verifyLookups(round int) {
	snap := w.snapshot()
	policy := w.policy(snap)
	lookup := func(subject graph.SubjectRef, typ, permission string) []string {
		results, more, err := engine.LookupResources(w.schema, snap, engine.Limits{}, engine.LookupResourcesRequest{
			ResourceType: typ, Permission: permission, Subject: subject, Policy: policy,
		})
		if err != nil {
			w.t.Fatalf("round %d: lookup %s %s for %s: %v", round, typ, permission, subject, err)
		}
		if more {
			w.t.Fatalf("round %d: lookup %s %s for %s reports more results without a limit", round, typ, permission, subject)
		}
		ids := []string{}
		for _, r := range results {
			if r.Result.Membership == engine.HasPermission {
				ids = append(ids, r.ID)
			}
		}
		return ids
	}
	for _, id := range w.order {
		for _, typ := range []string{"folder", "dataset"} {
			for _, permission := range propertyPermissions {
				got := lookup(graph.SubjectRef{Type: "delegation", ID: id}, typ, permission)
				want := []string{}
				if w.live(id) {
					principals := w.principals(id)
					want = lookup(principals[0], typ, permission)
					for _, p := range principals[1:] {
						own := lookup(p, typ, permission)
						want = slices.DeleteFunc(want, func(r string) bool { return !slices.Contains(own, r) })
					}
					for _, l := range w.links(id) {
						want = slices.DeleteFunc(want, func(r string) bool {
							return !w.covers(l.scope, graph.ObjectRef{Type: typ, ID: r}, permission)
						})
					}
				}
				w.stats.lookups++
				w.stats.lookupHits += len(got)
				if !slices.Equal(got, want) {
					w.t.Errorf("round %d: LookupResources %s %s for delegation:%s = %v, the intersection of %v filtered by scope is %v",
						round, typ, permission, id, got, w.principals(id), want)
				}
			}
		}
	}
}

func describeRequest(req delegation.Request) string {
	return fmt.Sprintf("%s -> agent:%s scope %v max depth %d max fan-out %d expiry %v",
		req.Delegator, req.Delegate, req.Scope, req.MaxDepth, req.MaxFanout, req.ExpiresAt)
}

func describeReasons(reasons map[errorClass][]string) string {
	if len(reasons) == 0 {
		return "no refusal"
	}
	var parts []string
	for c, why := range reasons {
		parts = append(parts, fmt.Sprintf("%s (%s)", c, strings.Join(why, "; ")))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
