package loadtest

import (
	"math/rand/v2"
	"strconv"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// docsSchema models document sharing: documents in folder trees, shared
// with users, nested groups, or everyone through a user:* wildcard.
const docsSchema = `definition user {}

definition group {
	relation member: user | group#member
}

definition folder {
	relation parent: folder
	relation owner: user
	relation editor: user | group#member
	relation viewer: user | user:* | group#member
	permission edit = owner + editor + parent->edit
	permission view = viewer + edit + parent->view
}

definition document {
	relation parent: folder
	relation owner: user
	relation editor: user | group#member
	relation viewer: user | user:* | group#member
	permission edit = owner + editor + parent->edit
	permission view = viewer + edit + parent->view
}
`

// Shape of one organization at full scale; smaller data sets scale it
// down. One organization has about docsRelationshipsPerOrg relationships.
const (
	docsDivisionsPerOrg     = 2
	docsUsersPerOrg         = 100
	docsTeamsPerOrg         = 10
	docsFoldersPerOrg       = 40
	docsDocumentsPerOrg     = 400
	docsRelationshipsPerOrg = 1120
	// docsMaxTeams keeps a folder's editor teams in one uint64 bit set.
	docsMaxTeams = 64
	docsGuests   = 256
)

// docsScenario is the "docs" scenario. Every organization oN has users
// oN-u* (oN-u0 is its admin, who owns the root folder), groups oN-team*,
// oN-div0, oN-div1 and oN-all nested in that order, folders oN-f* in a
// random tree under oN-f0, and documents oN-d*. The oN-all group views the
// root folder, teams may edit folders and documents, and a few documents
// are public through user:*.
//
// Expected results follow from the construction. A user views every
// document of its organization and the public documents of the others. It
// edits a document of its organization if it owns it, is the admin, or is
// in a team that edits the document or one of its folders. Guest users
// (guest-*, and wguest-* that the load test writes) are not verified.
type docsScenario struct {
	orgs      int
	users     int // per organization, likewise the three below
	teams     int
	folders   int
	documents int

	// Indexed by org*documents + document.
	docParent    []int32  // local folder index
	docOwner     []int32  // local user index
	docEditTeams []uint64 // teams that edit the document directly or through its folders
	docEditor    []int32  // team granted editor on the document itself, or -1
	docPublic    []bool
	docViewer    []int32 // user granted viewer directly, or -1

	// Indexed by org*folders + folder.
	folderParent     []int32 // -1 for the root
	folderEditorTeam []int32 // -1 for none

	publicDocs  []int32 // global indexes
	publicInOrg []int32 // per organization

	guestGrants int
	count       int
}

func newDocsScenario(relationships int, seed uint64) *docsScenario {
	orgs := relationships / docsRelationshipsPerOrg
	scale := 1.0
	if orgs < 2 {
		orgs = 2
		scale = float64(relationships) / (2 * docsRelationshipsPerOrg)
	}
	s := &docsScenario{
		orgs:      orgs,
		users:     scaled(docsUsersPerOrg, scale, 4),
		teams:     min(docsMaxTeams, scaled(docsTeamsPerOrg, scale, 2)),
		folders:   scaled(docsFoldersPerOrg, scale, 2),
		documents: scaled(docsDocumentsPerOrg, scale, 4),
	}
	r := rand.New(rand.NewPCG(seed, 0x646f6373)) // "docs"

	s.folderParent = make([]int32, orgs*s.folders)
	s.folderEditorTeam = make([]int32, orgs*s.folders)
	s.docParent = make([]int32, orgs*s.documents)
	s.docOwner = make([]int32, orgs*s.documents)
	s.docEditTeams = make([]uint64, orgs*s.documents)
	s.docEditor = make([]int32, orgs*s.documents)
	s.docPublic = make([]bool, orgs*s.documents)
	s.docViewer = make([]int32, orgs*s.documents)
	s.publicInOrg = make([]int32, orgs)

	// Relationships that do not depend on random choices: team membership
	// of every user, team and division nesting, the root folder's owner
	// and viewer, every other folder's parent, and each document's parent
	// and owner.
	perOrg := s.users + s.teams + docsDivisionsPerOrg + 2 + (s.folders - 1) + 2*s.documents
	s.count = orgs * perOrg

	folderEditTeams := make([]uint64, s.folders) // editor teams of a folder and its ancestors
	for o := range orgs {
		for f := range s.folders {
			i := o*s.folders + f
			s.folderParent[i] = -1
			folderEditTeams[f] = 0
			if f > 0 {
				parent := r.IntN(f)
				s.folderParent[i] = int32(parent)
				folderEditTeams[f] = folderEditTeams[parent]
			}
			s.folderEditorTeam[i] = -1
			if f > 0 && r.IntN(100) < 15 {
				t := r.IntN(s.teams)
				s.folderEditorTeam[i] = int32(t)
				folderEditTeams[f] |= 1 << t
				s.count++
			}
		}
		for doc := range s.documents {
			i := o*s.documents + doc
			parent := r.IntN(s.folders)
			s.docParent[i] = int32(parent)
			s.docOwner[i] = int32(r.IntN(s.users))
			s.docEditTeams[i] = folderEditTeams[parent]
			s.docViewer[i] = -1
			s.docEditor[i] = -1
			if r.IntN(4) == 0 {
				t := r.IntN(s.teams)
				s.docEditor[i] = int32(t)
				s.docEditTeams[i] |= 1 << t
				s.count++
			}
			if r.IntN(50) == 0 {
				s.docPublic[i] = true
				s.publicDocs = append(s.publicDocs, int32(i))
				s.publicInOrg[o]++
				s.count++
			}
			if r.IntN(10) == 0 {
				s.docViewer[i] = int32(r.IntN(s.users))
				s.count++
			}
		}
	}

	if missing := relationships - s.count; missing > 0 {
		s.guestGrants = min(missing, docsGuests*len(s.docParent))
		s.count += s.guestGrants
	}
	return s
}

func orgID(o int) string { return "o" + strconv.Itoa(o) }

func (s *docsScenario) Name() string   { return "docs" }
func (s *docsScenario) Schema() string { return docsSchema }
func (s *docsScenario) Count() int     { return s.count }

func (s *docsScenario) documentID(global int) string {
	return entityID('o', global/s.documents, "d", global%s.documents)
}

// Relationships emits the guest grants first and then one organization
// after another, each ending with its documents, so that ReadyCheck
// depends on the last relationships loaded.
func (s *docsScenario) Relationships(emit func(*v1.Relationship) error) error {
	total := len(s.docParent)
	for i := range s.guestGrants {
		rel := relationship("document", s.documentID(i%total), "viewer", subject("user", guestID("guest-", i/total)))
		if err := emit(rel); err != nil {
			return err
		}
	}
	for o := range s.orgs {
		if err := s.emitOrg(o, emit); err != nil {
			return err
		}
	}
	return nil
}

func (s *docsScenario) emitOrg(o int, emit func(*v1.Relationship) error) error {
	user := func(u int) *v1.SubjectReference { return subject("user", entityID('o', o, "u", u)) }
	team := func(t int) *v1.SubjectReference { return subjectSet("group", entityID('o', o, "team", t), "member") }
	folder := func(f int) string { return entityID('o', o, "f", f) }
	all := orgID(o) + "-all"
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

	for u := range s.users {
		rels = append(rels, relationship("group", entityID('o', o, "team", u%s.teams), "member", user(u)))
		if err := flush(); err != nil {
			return err
		}
	}
	for t := range s.teams {
		rels = append(rels, relationship("group", entityID('o', o, "div", t%docsDivisionsPerOrg), "member", team(t)))
	}
	for div := range docsDivisionsPerOrg {
		rels = append(rels, relationship("group", all, "member", subjectSet("group", entityID('o', o, "div", div), "member")))
	}
	if err := flush(); err != nil {
		return err
	}

	for f := range s.folders {
		i := o*s.folders + f
		if parent := s.folderParent[i]; parent < 0 {
			rels = append(rels,
				relationship("folder", folder(f), "owner", user(0)),
				relationship("folder", folder(f), "viewer", subjectSet("group", all, "member")),
			)
		} else {
			rels = append(rels, relationship("folder", folder(f), "parent", subject("folder", folder(int(parent)))))
		}
		if t := s.folderEditorTeam[i]; t >= 0 {
			rels = append(rels, relationship("folder", folder(f), "editor", team(int(t))))
		}
		if err := flush(); err != nil {
			return err
		}
	}

	for doc := range s.documents {
		i := o*s.documents + doc
		id := s.documentID(i)
		rels = append(rels,
			relationship("document", id, "parent", subject("folder", folder(int(s.docParent[i])))),
			relationship("document", id, "owner", user(int(s.docOwner[i]))),
		)
		if t := s.docEditor[i]; t >= 0 {
			rels = append(rels, relationship("document", id, "editor", team(int(t))))
		}
		if s.docPublic[i] {
			rels = append(rels, relationship("document", id, "viewer", subject("user", "*")))
		}
		if u := s.docViewer[i]; u >= 0 {
			rels = append(rels, relationship("document", id, "viewer", user(int(u))))
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

func (s *docsScenario) otherOrg(r *rand.Rand, o int) int {
	return (o + 1 + r.IntN(s.orgs-1)) % s.orgs
}

func (s *docsScenario) expectView(o, doc int) Expectation {
	if doc/s.documents == o || s.docPublic[doc] {
		return ExpectAllowed
	}
	return ExpectDenied
}

func (s *docsScenario) expectEdit(o, u, doc int) Expectation {
	if doc/s.documents != o {
		return ExpectDenied
	}
	if u == 0 || u == int(s.docOwner[doc]) || s.docEditTeams[doc]&(1<<(u%s.teams)) != 0 {
		return ExpectAllowed
	}
	return ExpectDenied
}

// NextCheck draws one of seven kinds of check, six of them verified.
func (s *docsScenario) NextCheck(r *rand.Rand) CheckCase {
	o := r.IntN(s.orgs)
	u := r.IntN(s.users)
	doc := o*s.documents + r.IntN(s.documents)
	user := subject("user", entityID('o', o, "u", u))
	check := func(global int, permission string, sub *v1.SubjectReference, expect Expectation) CheckCase {
		return CheckCase{Resource: object("document", s.documentID(global)), Permission: permission, Subject: sub, Expect: expect}
	}

	switch n := r.IntN(100); {
	case n < 30: // a user views a document of its organization
		return check(doc, "view", user, ExpectAllowed)
	case n < 50: // another organization's document, public or not
		other := s.otherOrg(r, o)*s.documents + r.IntN(s.documents)
		return check(other, "view", user, s.expectView(o, other))
	case n < 55 && len(s.publicDocs) > 0: // a public document
		public := int(s.publicDocs[r.IntN(len(s.publicDocs))])
		return check(public, "view", user, ExpectAllowed)
	case n < 80: // a user edits a document of its organization
		return check(doc, "edit", user, s.expectEdit(o, u, doc))
	case n < 85: // the owner edits
		owner := int(s.docOwner[doc])
		return check(doc, "edit", subject("user", entityID('o', o, "u", owner)), ExpectAllowed)
	case n < 90: // a user of another organization edits
		other := s.otherOrg(r, o)*s.documents + r.IntN(s.documents)
		return check(other, "edit", user, ExpectDenied)
	default: // a guest, whose grants writes change
		return check(doc, "view", s.randomGuest(r), Unverified)
	}
}

func (s *docsScenario) randomGuest(r *rand.Rand) *v1.SubjectReference {
	if r.IntN(2) == 0 {
		return subject("user", guestID("guest-", r.IntN(docsGuests)))
	}
	return subject("user", guestID("wguest-", r.IntN(64)))
}

// NextLookup returns a lookup of the documents a user can view or edit.
func (s *docsScenario) NextLookup(r *rand.Rand) LookupCase {
	if r.IntN(5) == 0 {
		return LookupCase{ResourceType: "document", Permission: "view", Subject: s.randomGuest(r)}
	}
	o := r.IntN(s.orgs)
	u := r.IntN(s.users)
	sub := subject("user", entityID('o', o, "u", u))
	parse := func(id string) (int, bool) {
		org, doc, ok := parseEntityID(id, 'o', "d")
		if !ok || org >= s.orgs || doc >= s.documents {
			return 0, false
		}
		return org*s.documents + doc, true
	}

	if r.IntN(2) == 0 {
		return LookupCase{
			ResourceType:  "document",
			Permission:    "view",
			Subject:       sub,
			Verified:      true,
			ExpectedCount: s.documents + len(s.publicDocs) - int(s.publicInOrg[o]),
			Allowed: func(id string) bool {
				doc, ok := parse(id)
				return ok && s.expectView(o, doc) == ExpectAllowed
			},
		}
	}
	editable := 0
	for doc := o * s.documents; doc < (o+1)*s.documents; doc++ {
		if s.expectEdit(o, u, doc) == ExpectAllowed {
			editable++
		}
	}
	return LookupCase{
		ResourceType:  "document",
		Permission:    "edit",
		Subject:       sub,
		Verified:      true,
		ExpectedCount: editable,
		Allowed: func(id string) bool {
			doc, ok := parse(id)
			return ok && s.expectEdit(o, u, doc) == ExpectAllowed
		},
	}
}

func (s *docsScenario) NextWrite(r *rand.Rand, worker int) *v1.Relationship {
	doc := r.IntN(len(s.docParent))
	return relationship("document", s.documentID(doc), "viewer", subject("user", guestID("wguest-", worker)))
}

// ReadyCheck uses the last document of the last organization and a user
// that reaches it only through its folder, whose relationship is among the
// last loaded.
func (s *docsScenario) ReadyCheck() CheckCase {
	o := s.orgs - 1
	doc := len(s.docParent) - 1
	u := 1
	for u == int(s.docOwner[doc]) || u == int(s.docViewer[doc]) {
		u++
	}
	return CheckCase{
		Resource:   object("document", s.documentID(doc)),
		Permission: "view",
		Subject:    subject("user", entityID('o', o, "u", u)),
		Expect:     ExpectAllowed,
	}
}

func (s *docsScenario) Marker() *v1.Relationship {
	return relationship("folder", entityID('o', 0, "f", 0), "owner", subject("user", entityID('o', 0, "u", 0)))
}
