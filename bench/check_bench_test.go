package bench

import (
	"fmt"
	"testing"

	"github.com/mandate-iam/mandate/engine"
)

const wideSubjects = 10_000

// BenchmarkCheckWideRelation checks a relation with 10,000 direct subjects.
func BenchmarkCheckWideRelation(b *testing.B) {
	rels := make([]string, 0, wideSubjects)
	for i := range wideSubjects {
		rels = append(rels, fmt.Sprintf("document:wide#viewer@user:u%05d", i))
	}
	f := newFixture(b, rels)

	b.Run("allowed", func(b *testing.B) {
		last := fmt.Sprintf("user:u%05d", wideSubjects-1)
		f.benchmarkCheck(b, checkRequest(b, "document:wide", "view", last), engine.HasPermission)
	})
	b.Run("denied", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:wide", "view", "user:outsider"), engine.NoPermission)
	})
}

// nestedGroupRelationships builds groups level1 to level5, each a member
// of the one above, with 50 users and four sibling leaf groups of 50 users
// at every level. The document's viewers are level1's members, and
// user:deep is a direct member of level5 only.
func nestedGroupRelationships() []string {
	const levels, usersPerGroup, leavesPerLevel = 5, 50, 4
	rels := []string{"document:nested#viewer@group:level1#member"}
	addUsers := func(group string) {
		for u := range usersPerGroup {
			rels = append(rels, fmt.Sprintf("group:%s#member@user:%s-u%02d", group, group, u))
		}
	}
	for level := 1; level <= levels; level++ {
		group := fmt.Sprintf("level%d", level)
		addUsers(group)
		for leaf := range leavesPerLevel {
			leafGroup := fmt.Sprintf("%s-leaf%d", group, leaf)
			rels = append(rels, fmt.Sprintf("group:%s#member@group:%s#member", group, leafGroup))
			addUsers(leafGroup)
		}
		if level < levels {
			rels = append(rels, fmt.Sprintf("group:%s#member@group:level%d#member", group, level+1))
		}
	}
	return append(rels, fmt.Sprintf("group:level%d#member@user:deep", levels))
}

// BenchmarkCheckNestedGroups checks a subject that is a member through five
// levels of nested groups, and one that is in none of them, which visits
// every group.
func BenchmarkCheckNestedGroups(b *testing.B) {
	f := newFixture(b, nestedGroupRelationships())

	b.Run("allowed", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:nested", "view", "user:deep"), engine.HasPermission)
	})
	b.Run("denied", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:nested", "view", "user:outsider"), engine.NoPermission)
	})
}

// folderChainRelationships builds a document in folder f1, whose parents
// are f2 to f5. Every folder has 20 viewers of its own, and user:top is a
// viewer of f5 only, so its access crosses five parent arrows.
func folderChainRelationships() []string {
	const depth, viewersPerFolder = 5, 20
	rels := []string{"document:chained#folder@folder:f1"}
	for level := 1; level <= depth; level++ {
		for v := range viewersPerFolder {
			rels = append(rels, fmt.Sprintf("folder:f%d#viewer@user:f%d-v%02d", level, level, v))
		}
		if level < depth {
			rels = append(rels, fmt.Sprintf("folder:f%d#parent@folder:f%d", level, level+1))
		}
	}
	return append(rels, fmt.Sprintf("folder:f%d#viewer@user:top", depth))
}

// BenchmarkCheckArrowChain checks access inherited through a parent chain
// of five folders.
func BenchmarkCheckArrowChain(b *testing.B) {
	f := newFixture(b, folderChainRelationships())

	b.Run("allowed", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:chained", "view", "user:top"), engine.HasPermission)
	})
	b.Run("denied", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:chained", "view", "user:outsider"), engine.NoPermission)
	})
}

// sharedDocumentRelationships gives document:shared 1,000 viewers, one of
// whom is also an editor and one of whom is banned.
func sharedDocumentRelationships() []string {
	rels := []string{
		"document:shared#editor@user:editor",
		"document:shared#viewer@user:editor",
		"document:shared#editor@user:editor-only",
		"document:shared#viewer@user:banned",
		"document:shared#banned@user:banned",
	}
	for v := range 997 {
		rels = append(rels, fmt.Sprintf("document:shared#viewer@user:v%03d", v))
	}
	return rels
}

// BenchmarkCheckIntersection checks edit = editor & viewer.
func BenchmarkCheckIntersection(b *testing.B) {
	f := newFixture(b, sharedDocumentRelationships())

	b.Run("allowed", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:shared", "edit", "user:editor"), engine.HasPermission)
	})
	b.Run("denied", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:shared", "edit", "user:editor-only"), engine.NoPermission)
	})
}

// BenchmarkCheckExclusion checks view_unbanned = viewer - banned.
func BenchmarkCheckExclusion(b *testing.B) {
	f := newFixture(b, sharedDocumentRelationships())

	b.Run("allowed", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:shared", "view_unbanned", "user:v500"), engine.HasPermission)
	})
	b.Run("denied", func(b *testing.B) {
		f.benchmarkCheck(b, checkRequest(b, "document:shared", "view_unbanned", "user:banned"), engine.NoPermission)
	})
}
