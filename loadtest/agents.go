package loadtest

import (
	"math/rand/v2"
	"strconv"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// agentsSchema models departments whose agents read and write datasets.
// Agents reach a department through nested groups (team, division,
// department-wide), datasets sit in folder trees whose root belongs to a
// department, and a dataset can block one agent from reading it.
const agentsSchema = `definition user {}

definition department {
	relation admin: user
	relation member: user | agent | group#member
	permission manage = admin
	permission view = member + manage
}

definition group {
	relation member: user | agent | group#member
}

definition agent {
	relation owner: user
	relation department: department
	permission manage = owner + department->manage
}

definition folder {
	relation department: department
	relation parent: folder
	relation reader: user | agent | group#member
	relation editor: user | agent | group#member
	permission edit = editor + parent->edit + department->manage
	permission read = reader + edit + parent->read + department->view
}

definition dataset {
	relation folder: folder
	relation owner: user | agent
	relation reader: user | agent | group#member
	relation blocked: user | agent
	permission write = owner + folder->edit
	permission read = (reader + write + folder->read) - blocked
}
`

// Shape of one department at full scale; smaller data sets scale it down.
// One department has about agentsRelationshipsPerDept relationships.
const (
	agentsAdminsPerDept        = 2
	agentsDivisionsPerDept     = 2
	agentsStaffPerDept         = 10
	agentsAgentsPerDept        = 100
	agentsTeamsPerDept         = 5
	agentsFoldersPerDept       = 50
	agentsDatasetsPerDept      = 500
	agentsRelationshipsPerDept = 1570
	// agentsGuests is the number of guest agents, which get random reader
	// grants across departments to fill the data set to its exact size.
	agentsGuests = 256
)

// agentsScenario is the "agents" scenario. Every department dN has users
// dN-admin* (department admins) and dN-staff* (owners of agents), agents
// dN-a*, groups dN-team*, dN-div0, dN-div1 and dN-all nested in that order,
// folders dN-f* in a random tree under dN-f0, and datasets dN-s*.
//
// Expected results follow from the construction: an agent reads every
// dataset of its own department unless that dataset blocks it, and no
// dataset of another department. Admins write every dataset of their
// department. Staff users read nothing. Guest agents (guest-*, and wguest-*
// that the load test writes) have grants across departments, and checks
// about them are not verified.
type agentsScenario struct {
	depts    int
	staff    int // per department, likewise the four below
	agents   int
	teams    int
	folders  int
	datasets int

	// Indexed by department*folders + folder.
	folderParent     []int32 // local index of the parent folder; -1 for the root
	folderReaderTeam []int32 // team granted reader on the folder, or -1

	// Indexed by department*datasets + dataset; agents are local indexes.
	datasetFolder  []int32
	datasetOwner   []int32
	datasetReader  []int32 // -1 for none
	datasetBlocked []int32 // -1 for none

	blockedDatasets []int32 // global indexes of datasets that block an agent
	blockedCount    []int32 // per department*agents + agent: datasets that block it

	guestGrants int
	count       int
}

func newAgentsScenario(relationships int, seed uint64) *agentsScenario {
	depts := relationships / agentsRelationshipsPerDept
	scale := 1.0
	if depts < 2 {
		depts = 2
		scale = float64(relationships) / (2 * agentsRelationshipsPerDept)
	}
	s := &agentsScenario{
		depts:    depts,
		staff:    scaled(agentsStaffPerDept, scale, 1),
		agents:   scaled(agentsAgentsPerDept, scale, 4),
		teams:    scaled(agentsTeamsPerDept, scale, 2),
		folders:  scaled(agentsFoldersPerDept, scale, 2),
		datasets: scaled(agentsDatasetsPerDept, scale, 4),
	}
	r := rand.New(rand.NewPCG(seed, 0x61676e7473)) // "agnts"

	s.folderParent = make([]int32, depts*s.folders)
	s.folderReaderTeam = make([]int32, depts*s.folders)
	s.datasetFolder = make([]int32, depts*s.datasets)
	s.datasetOwner = make([]int32, depts*s.datasets)
	s.datasetReader = make([]int32, depts*s.datasets)
	s.datasetBlocked = make([]int32, depts*s.datasets)
	s.blockedCount = make([]int32, depts*s.agents)

	// Relationships that do not depend on random choices: admins, the
	// department's member group, division and team nesting, three per
	// agent, the root folder's department and every other folder's parent,
	// and each dataset's folder and owner.
	perDept := agentsAdminsPerDept + 1 + agentsDivisionsPerDept + s.teams +
		3*s.agents + s.folders + 2*s.datasets
	s.count = depts * perDept

	for d := range depts {
		for f := range s.folders {
			i := d*s.folders + f
			s.folderParent[i] = -1
			if f > 0 {
				s.folderParent[i] = int32(r.IntN(f))
			}
			s.folderReaderTeam[i] = -1
			if r.IntN(5) == 0 {
				s.folderReaderTeam[i] = int32(r.IntN(s.teams))
				s.count++
			}
		}
		for ds := range s.datasets {
			i := d*s.datasets + ds
			s.datasetFolder[i] = int32(r.IntN(s.folders))
			s.datasetOwner[i] = int32(r.IntN(s.agents))
			s.datasetReader[i] = -1
			if r.IntN(10) < 3 {
				s.datasetReader[i] = int32(r.IntN(s.agents))
				s.count++
			}
			s.datasetBlocked[i] = -1
			if r.IntN(10) == 0 {
				blocked := int32(r.IntN(s.agents))
				s.datasetBlocked[i] = blocked
				s.blockedDatasets = append(s.blockedDatasets, int32(i))
				s.blockedCount[d*s.agents+int(blocked)]++
				s.count++
			}
		}
	}

	// Fill up to the requested size with guest reader grants, each a
	// distinct (guest, dataset) pair.
	if missing := relationships - s.count; missing > 0 {
		s.guestGrants = min(missing, agentsGuests*len(s.datasetFolder))
		s.count += s.guestGrants
	}
	return s
}

func (s *agentsScenario) Name() string   { return "agents" }
func (s *agentsScenario) Schema() string { return agentsSchema }
func (s *agentsScenario) Count() int     { return s.count }

func deptID(d int) string { return "d" + strconv.Itoa(d) }

func guestID(prefix string, g int) string { return prefix + strconv.Itoa(g) }

func (s *agentsScenario) datasetID(global int) string {
	return entityID('d', global/s.datasets, "s", global%s.datasets)
}

// Relationships emits the guest grants first and then one department after
// another, each ending with its datasets, so that ReadyCheck depends on
// the last relationships loaded.
func (s *agentsScenario) Relationships(emit func(*v1.Relationship) error) error {
	total := len(s.datasetFolder)
	for i := range s.guestGrants {
		rel := relationship("dataset", s.datasetID(i%total), "reader", subject("agent", guestID("guest-", i/total)))
		if err := emit(rel); err != nil {
			return err
		}
	}
	for d := range s.depts {
		if err := s.emitDepartment(d, emit); err != nil {
			return err
		}
	}
	return nil
}

func (s *agentsScenario) emitDepartment(d int, emit func(*v1.Relationship) error) error {
	dept := deptID(d)
	group := func(name string) string { return dept + "-" + name }
	team := func(t int) string { return entityID('d', d, "team", t) }
	rels := make([]*v1.Relationship, 0, 64)
	flush := func() error {
		for _, rel := range rels {
			if err := emit(rel); err != nil {
				return err
			}
		}
		rels = rels[:0]
		return nil
	}

	for a := range agentsAdminsPerDept {
		rels = append(rels, relationship("department", dept, "admin", subject("user", entityID('d', d, "admin", a))))
	}
	rels = append(rels, relationship("department", dept, "member", subjectSet("group", group("all"), "member")))
	for div := range agentsDivisionsPerDept {
		rels = append(rels, relationship("group", group("all"), "member",
			subjectSet("group", entityID('d', d, "div", div), "member")))
	}
	for t := range s.teams {
		rels = append(rels, relationship("group", entityID('d', d, "div", t%agentsDivisionsPerDept), "member",
			subjectSet("group", team(t), "member")))
	}
	if err := flush(); err != nil {
		return err
	}

	for a := range s.agents {
		agent := entityID('d', d, "a", a)
		rels = append(rels,
			relationship("group", team(a%s.teams), "member", subject("agent", agent)),
			relationship("agent", agent, "owner", subject("user", entityID('d', d, "staff", a%s.staff))),
			relationship("agent", agent, "department", subject("department", dept)),
		)
		if err := flush(); err != nil {
			return err
		}
	}

	for f := range s.folders {
		i := d*s.folders + f
		folder := entityID('d', d, "f", f)
		if parent := s.folderParent[i]; parent < 0 {
			rels = append(rels, relationship("folder", folder, "department", subject("department", dept)))
		} else {
			rels = append(rels, relationship("folder", folder, "parent", subject("folder", entityID('d', d, "f", int(parent)))))
		}
		if t := s.folderReaderTeam[i]; t >= 0 {
			rels = append(rels, relationship("folder", folder, "reader", subjectSet("group", team(int(t)), "member")))
		}
		if err := flush(); err != nil {
			return err
		}
	}

	for ds := range s.datasets {
		i := d*s.datasets + ds
		dataset := entityID('d', d, "s", ds)
		rels = append(rels,
			relationship("dataset", dataset, "folder", subject("folder", entityID('d', d, "f", int(s.datasetFolder[i])))),
			relationship("dataset", dataset, "owner", subject("agent", entityID('d', d, "a", int(s.datasetOwner[i])))),
		)
		if a := s.datasetReader[i]; a >= 0 {
			rels = append(rels, relationship("dataset", dataset, "reader", subject("agent", entityID('d', d, "a", int(a)))))
		}
		if a := s.datasetBlocked[i]; a >= 0 {
			rels = append(rels, relationship("dataset", dataset, "blocked", subject("agent", entityID('d', d, "a", int(a)))))
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// otherDept returns a random department other than d; there are always at
// least two.
func (s *agentsScenario) otherDept(r *rand.Rand, d int) int {
	return (d + 1 + r.IntN(s.depts-1)) % s.depts
}

// expectRead returns whether agent a of department d may read the global
// dataset ds.
func (s *agentsScenario) expectRead(d, a, ds int) Expectation {
	if ds/s.datasets != d || int(s.datasetBlocked[ds]) == a {
		return ExpectDenied
	}
	return ExpectAllowed
}

// NextCheck draws one of ten kinds of check, nine of them verified.
func (s *agentsScenario) NextCheck(r *rand.Rand) CheckCase {
	d := r.IntN(s.depts)
	a := r.IntN(s.agents)
	local := r.IntN(s.datasets)
	ds := d*s.datasets + local
	agent := subject("agent", entityID('d', d, "a", a))
	readOf := func(global int, sub *v1.SubjectReference, expect Expectation) CheckCase {
		return CheckCase{Resource: object("dataset", s.datasetID(global)), Permission: "read", Subject: sub, Expect: expect}
	}

	switch n := r.IntN(100); {
	case n < 30: // an agent reads a dataset of its own department
		return readOf(ds, agent, s.expectRead(d, a, ds))
	case n < 40 && len(s.blockedDatasets) > 0: // a blocked agent
		blocked := int(s.blockedDatasets[r.IntN(len(s.blockedDatasets))])
		bd := blocked / s.datasets
		return readOf(blocked, subject("agent", entityID('d', bd, "a", int(s.datasetBlocked[blocked]))), ExpectDenied)
	case n < 60: // an agent reads a dataset of another department
		other := s.otherDept(r, d)*s.datasets + local
		return readOf(other, agent, ExpectDenied)
	case n < 68: // a department admin writes through the folder tree
		admin := subject("user", entityID('d', d, "admin", r.IntN(agentsAdminsPerDept)))
		return CheckCase{Resource: object("dataset", s.datasetID(ds)), Permission: "write", Subject: admin, Expect: ExpectAllowed}
	case n < 72: // an admin of another department
		admin := subject("user", entityID('d', s.otherDept(r, d), "admin", r.IntN(agentsAdminsPerDept)))
		return CheckCase{Resource: object("dataset", s.datasetID(ds)), Permission: "write", Subject: admin, Expect: ExpectDenied}
	case n < 77: // staff users own agents but are not members
		staff := subject("user", entityID('d', d, "staff", r.IntN(s.staff)))
		return readOf(ds, staff, ExpectDenied)
	case n < 82: // a dataset's owner writes it
		owner := subject("agent", entityID('d', d, "a", int(s.datasetOwner[ds])))
		return CheckCase{Resource: object("dataset", s.datasetID(ds)), Permission: "write", Subject: owner, Expect: ExpectAllowed}
	case n < 86: // an agent's owner manages it
		owner := subject("user", entityID('d', d, "staff", a%s.staff))
		return CheckCase{Resource: object("agent", entityID('d', d, "a", a)), Permission: "manage", Subject: owner, Expect: ExpectAllowed}
	case n < 90: // an admin of another department cannot manage the agent
		admin := subject("user", entityID('d', s.otherDept(r, d), "admin", r.IntN(agentsAdminsPerDept)))
		return CheckCase{Resource: object("agent", entityID('d', d, "a", a)), Permission: "manage", Subject: admin, Expect: ExpectDenied}
	default: // a guest, whose grants writes change
		return readOf(ds, s.randomGuest(r), Unverified)
	}
}

// randomGuest returns a loaded guest or one of the agents that the load
// test's writes grant access to.
func (s *agentsScenario) randomGuest(r *rand.Rand) *v1.SubjectReference {
	if r.IntN(2) == 0 {
		return subject("agent", guestID("guest-", r.IntN(agentsGuests)))
	}
	return subject("agent", guestID("wguest-", r.IntN(64)))
}

// NextLookup returns a lookup of the datasets an agent can read. For an
// agent of a department, the result is exactly the department's datasets
// that do not block it.
func (s *agentsScenario) NextLookup(r *rand.Rand) LookupCase {
	if r.IntN(5) == 0 {
		return LookupCase{ResourceType: "dataset", Permission: "read", Subject: s.randomGuest(r)}
	}
	d := r.IntN(s.depts)
	a := r.IntN(s.agents)
	return LookupCase{
		ResourceType:  "dataset",
		Permission:    "read",
		Subject:       subject("agent", entityID('d', d, "a", a)),
		Verified:      true,
		ExpectedCount: s.datasets - int(s.blockedCount[d*s.agents+a]),
		Allowed: func(id string) bool {
			dd, local, ok := parseEntityID(id, 'd', "s")
			if !ok || dd >= s.depts || local >= s.datasets {
				return false
			}
			return s.expectRead(d, a, dd*s.datasets+local) == ExpectAllowed
		},
	}
}

func (s *agentsScenario) NextWrite(r *rand.Rand, worker int) *v1.Relationship {
	ds := r.IntN(len(s.datasetFolder))
	return relationship("dataset", s.datasetID(ds), "reader", subject("agent", guestID("wguest-", worker)))
}

// ReadyCheck uses the last dataset of the last department and an agent
// that reaches it only through its folder, whose relationship is among the
// last loaded.
func (s *agentsScenario) ReadyCheck() CheckCase {
	d := s.depts - 1
	ds := len(s.datasetFolder) - 1
	a := 0
	for a == int(s.datasetOwner[ds]) || a == int(s.datasetReader[ds]) || a == int(s.datasetBlocked[ds]) {
		a++
	}
	return CheckCase{
		Resource:   object("dataset", s.datasetID(ds)),
		Permission: "read",
		Subject:    subject("agent", entityID('d', d, "a", a)),
		Expect:     ExpectAllowed,
	}
}

func (s *agentsScenario) Marker() *v1.Relationship {
	return relationship("department", deptID(0), "admin", subject("user", entityID('d', 0, "admin", 0)))
}
