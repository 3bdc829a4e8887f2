package schema

import (
	_ "embed"
	"fmt"
	"sort"
)

// AgentIAM is the default schema that `mandate serve` installs on an empty
// store: people, departments, roles, agents, delegations, the platform
// itself, and example resource types (folders, datasets, tools, systems).
//
//go:embed agentiam.zed
var AgentIAM string

// Object types that Mandate's agent features read and write. Operators may
// add definitions and relations, but a schema that has the agent type must
// keep these definitions and relations.
const (
	AgentType      = "agent"
	DelegationType = "delegation"
	UserType       = "user"
	DepartmentType = "department"
	RoleType       = "role"
	PlatformType   = "platform"
)

// agentCore lists, for each core definition, the relations Mandate writes
// or checks, and the subject types each must accept.
var agentCore = map[string]map[string][]string{
	UserType:       {},
	DepartmentType: {"member": {AgentType}},
	RoleType:       {"assignee": {AgentType}},
	AgentType:      {"owner": {UserType}, "department": {DepartmentType}, "role": {RoleType}},
	DelegationType: {"delegator": {UserType, AgentType, DelegationType}, "delegate": {AgentType}},
	PlatformType:   {"write_schema": nil, "write_relationships": nil},
}

// HasAgentTypes reports whether the schema defines Mandate's agent type,
// which turns on the agent features.
func (s *Schema) HasAgentTypes() bool { return s.Definition(AgentType) != nil }

// CheckAgentCore returns an error naming the first core definition or
// relation that next lacks. It is called only when the current schema has
// the agent types, so that operators extend them and never break them.
func CheckAgentCore(next *Schema) error {
	names := make([]string, 0, len(agentCore))
	for name := range agentCore {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, defName := range names {
		relations := agentCore[defName]
		def := next.Definition(defName)
		if def == nil {
			return fmt.Errorf("definition %q is part of Mandate's agent schema and cannot be removed", defName)
		}
		relNames := make([]string, 0, len(relations))
		for name := range relations {
			relNames = append(relNames, name)
		}
		sort.Strings(relNames)
		for _, relName := range relNames {
			subjectTypes := relations[relName]
			rel := def.Relations[relName]
			if rel == nil {
				return fmt.Errorf("%s#%s is part of Mandate's agent schema and cannot be removed", defName, relName)
			}
			for _, t := range subjectTypes {
				if !acceptsType(rel, t) {
					return fmt.Errorf("%s#%s must accept subjects of type %q for Mandate's agent features", defName, relName, t)
				}
			}
		}
	}
	return nil
}

func acceptsType(rel *Relation, subjectType string) bool {
	for _, a := range rel.Allowed {
		if a.Type == subjectType && a.Relation == Ellipsis && !a.Wildcard && a.Caveat == "" && !a.Expiration {
			return true
		}
	}
	return false
}
