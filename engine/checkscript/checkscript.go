// Package checkscript parses scripted check cases: a schema, relationships
// and checks with their expected results, in a plain text format. The
// engine's tests run the scripts with engine.Check, and the conformance
// tests run the same scripts against SpiceDB to show that the expected
// results are SpiceDB's.
//
// A script is a sequence of cases:
//
//	# A comment line.
//	case union grants either side
//	schema:
//	  definition user {}
//	  definition doc {
//	    relation viewer: user
//	    permission view = viewer
//	  }
//	relationships:
//	  doc:d1#viewer@user:alice
//	check doc:d1#view@user:alice is has
//	check doc:d1#view@user:bob with {"n": 5} is conditional n,m
//	check doc:d1#view@user:carol is no
//
// The schema and relationships blocks are indented by two spaces.
// Relationships use SpiceDB's tuple syntax, including [caveat:{...}] and
// [expiration:...]. A check's expected result is one of has, no,
// "conditional" followed by the sorted missing context names separated by
// commas, "error max-depth" or "error caveat". Two optional lines change a
// case: "maxdepth N" sets engine.Limits.MaxDepth, and
// "spicedb differs: REASON" marks a case whose result is deliberately not
// SpiceDB's.
package checkscript

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
)

// Expected errors of a check.
const (
	ErrorMaxDepth = "max-depth"
	ErrorCaveat   = "caveat"
)

// Case is one schema with its relationships and checks.
type Case struct {
	Name string
	// Line is the line of the case keyword, for messages.
	Line          int
	Schema        string
	Relationships []*graph.Relationship
	// RelationshipTexts are the relationships as written.
	RelationshipTexts []string
	// MaxDepth is the depth limit for the checks, or 0 for the default.
	MaxDepth int
	// SpiceDBDiffers is the reason the expected results are not SpiceDB's,
	// or "" when they are.
	SpiceDBDiffers string
	Checks         []Check
}

// Check is one permission check with its expected result.
type Check struct {
	Line int
	// Text is the check as written, without the expected result.
	Text       string
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
	Context    map[string]any
	// Membership and MissingContext are the expected result unless Error
	// is set.
	Membership     engine.Membership
	MissingContext []string
	// Error is ErrorMaxDepth, ErrorCaveat or "" when the check must
	// succeed.
	Error string
}

// ParseFile reads and parses a script file.
func ParseFile(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cases, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cases, nil
}

// Parse parses a script.
func Parse(data []byte) ([]Case, error) {
	var cases []Case
	var current *Case
	var block *[]string // the indented block being read, if any
	var schemaLines []string

	finish := func() {
		if current != nil {
			current.Schema = strings.Join(schemaLines, "\n")
			cases = append(cases, *current)
		}
	}

	scanner := bufio.NewScanner(bytes.NewReader(data))
	for lineNumber := 1; scanner.Scan(); lineNumber++ {
		line := scanner.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasPrefix(line, "  ") {
			if block == nil {
				return nil, fmt.Errorf("line %d: indented line outside a schema or relationships block", lineNumber)
			}
			*block = append(*block, strings.TrimPrefix(line, "  "))
			continue
		}
		block = nil

		keyword, rest, _ := strings.Cut(trimmed, " ")
		if keyword != "case" && current == nil {
			return nil, fmt.Errorf("line %d: %q before the first case", lineNumber, trimmed)
		}
		switch keyword {
		case "case":
			finish()
			current = &Case{Name: rest, Line: lineNumber}
			schemaLines = nil
		case "schema:":
			block = &schemaLines
		case "relationships:":
			block = &current.RelationshipTexts
		case "maxdepth":
			n, err := strconv.Atoi(rest)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("line %d: invalid maxdepth %q: expected a positive integer", lineNumber, rest)
			}
			current.MaxDepth = n
		case "spicedb":
			reason, ok := strings.CutPrefix(rest, "differs: ")
			if !ok {
				return nil, fmt.Errorf("line %d: expected \"spicedb differs: REASON\"", lineNumber)
			}
			current.SpiceDBDiffers = reason
		case "check":
			c, err := parseCheck(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNumber, err)
			}
			c.Line = lineNumber
			current.Checks = append(current.Checks, c)
		default:
			return nil, fmt.Errorf("line %d: unknown keyword %q", lineNumber, keyword)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	finish()

	for i := range cases {
		for _, text := range cases[i].RelationshipTexts {
			r, err := Relationship(text)
			if err != nil {
				return nil, fmt.Errorf("case %q: %w", cases[i].Name, err)
			}
			cases[i].Relationships = append(cases[i].Relationships, r)
		}
	}
	return cases, nil
}

// parseCheck parses "RESOURCE#PERMISSION@SUBJECT [with {JSON}] is RESULT".
func parseCheck(text string) (Check, error) {
	question, expected, ok := strings.Cut(text, " is ")
	if !ok {
		return Check{}, fmt.Errorf("check %q has no expected result: add \" is has|no|conditional|error ...\"", text)
	}
	c := Check{Text: question}
	reference, contextJSON, hasContext := strings.Cut(question, " with ")
	if hasContext {
		if err := json.Unmarshal([]byte(contextJSON), &c.Context); err != nil {
			return Check{}, fmt.Errorf("check %q: invalid context: %w", text, err)
		}
	}
	parsed, err := tuple.Parse(reference)
	if err != nil {
		return Check{}, fmt.Errorf("check %q: %w", text, err)
	}
	c.Resource = graph.ObjectRef{Type: parsed.Resource.ObjectType, ID: parsed.Resource.ObjectID}
	c.Permission = parsed.Resource.Relation
	c.Subject = subjectRef(parsed.Subject)

	kind, detail, _ := strings.Cut(expected, " ")
	switch kind {
	case "has":
		c.Membership = engine.HasPermission
	case "no":
		c.Membership = engine.NoPermission
	case "conditional":
		c.Membership = engine.ConditionalPermission
		if detail != "" {
			c.MissingContext = strings.Split(detail, ",")
			slices.Sort(c.MissingContext)
		}
	case "error":
		if detail != ErrorMaxDepth && detail != ErrorCaveat {
			return Check{}, fmt.Errorf("check %q: unknown error %q: expected %s or %s", text, detail, ErrorMaxDepth, ErrorCaveat)
		}
		c.Error = detail
	default:
		return Check{}, fmt.Errorf("check %q: unknown result %q: expected has, no, conditional or error", text, kind)
	}
	return c, nil
}

// Relationship parses a relationship in SpiceDB's tuple syntax, with its
// optional caveat and expiration.
func Relationship(text string) (*graph.Relationship, error) {
	parsed, err := tuple.Parse(text)
	if err != nil {
		return nil, err
	}
	r := &graph.Relationship{Key: graph.Key{
		ResourceType: parsed.Resource.ObjectType,
		ResourceID:   parsed.Resource.ObjectID,
		Relation:     parsed.Resource.Relation,
		Subject:      subjectRef(parsed.Subject),
	}}
	if c := parsed.OptionalCaveat; c != nil {
		r.Caveat = c.CaveatName
		if fields := c.GetContext().AsMap(); len(fields) > 0 {
			r.CaveatContext = fields
		}
	}
	if parsed.OptionalExpiration != nil {
		r.Expiration = *parsed.OptionalExpiration
	}
	return r, nil
}

func subjectRef(onr tuple.ObjectAndRelation) graph.SubjectRef {
	relation := onr.Relation
	if relation == tuple.Ellipsis {
		relation = graph.Ellipsis
	}
	return graph.SubjectRef{Type: onr.ObjectType, ID: onr.ObjectID, Relation: relation}
}
