package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authzed/spicedb/pkg/schemadsl/compiler"
	"github.com/authzed/spicedb/pkg/spiceerrors"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// validationProblem is a failed check or an invalid input in a validation
// file, with the position it refers to.
type validationProblem struct {
	// line and column are 1-based positions in the validation file, or 0
	// when unknown.
	line, column int
	// excerpt is the text on that line the problem is about, underlined in
	// the output.
	excerpt string
	message string
	// expected and got describe a failed check, or are empty.
	expected, got string
}

// problemError is the error of a validation file that cannot be run: its
// YAML, schema or relationships are invalid.
type problemError struct {
	problems []validationProblem
}

func (e *problemError) Error() string {
	messages := make([]string, 0, len(e.problems))
	for _, p := range e.problems {
		messages = append(messages, p.message)
	}
	return strings.Join(messages, "; ")
}

func problemAt(line, column int, excerpt, format string, args ...any) *problemError {
	return &problemError{problems: []validationProblem{{
		line: line, column: column, excerpt: excerpt, message: fmt.Sprintf(format, args...),
	}}}
}

// loadedValidationFile is a validation file with its schema compiled and
// its relationships written to an in-memory graph.
type loadedValidationFile struct {
	path     string
	contents []byte
	parsed   *validationfile.ValidationFile
	schema   *schema.Schema
	snap     graph.Snapshot
}

// loadValidationFile reads and checks one file. A file whose name ends in
// ".zed" is a schema alone, as zed accepts it. The error is a
// *problemError when the file's content is at fault.
func loadValidationFile(ctx context.Context, path string) (*loadedValidationFile, error) {
	contents, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lf := &loadedValidationFile{path: path, contents: contents}

	if strings.HasSuffix(path, ".zed") {
		lf.parsed = &validationfile.ValidationFile{}
		lf.parsed.Schema.Schema = string(contents)
		if lf.schema, err = compileValidationSchema(ctx, string(contents), 0); err != nil {
			return nil, err
		}
		return lf, lf.writeGraph(ctx, nil)
	}

	lf.parsed, err = validationfile.DecodeValidationFile(contents)
	if err != nil {
		return nil, yamlProblem(err)
	}
	text, schemaLine, err := lf.schemaText()
	if err != nil {
		return nil, err
	}
	if lf.schema, err = compileValidationSchema(ctx, text, schemaLine); err != nil {
		return nil, err
	}

	rels := lf.parsed.Relationships.Relationships
	positions := lf.parsed.Relationships.RelationshipPositions
	var problems []validationProblem
	converted := make([]*graph.Relationship, 0, len(rels))
	for i, rel := range rels {
		r, err := checkValidationRelationship(lf.schema, rel)
		if err != nil {
			p := validationProblem{message: err.Error(), excerpt: tuple.MustString(rel)}
			if i < len(positions) {
				p.line, p.column = positions[i].LineNumber, positions[i].ColumnPosition
			}
			problems = append(problems, p)
			continue
		}
		converted = append(converted, r)
	}
	if len(problems) > 0 {
		return nil, &problemError{problems: problems}
	}
	return lf, lf.writeGraph(ctx, converted)
}

// yamlProblem locates a decoding error: SpiceDB's block parsers report the
// line of the value at fault, and YAML syntax errors name it in the text.
func yamlProblem(err error) error {
	if withSource, ok := spiceerrors.AsWithSourceError(err); ok {
		return problemAt(int(withSource.LineNumber), int(withSource.ColumnPosition), withSource.SourceCodeString,
			"invalid validation file: %v", err)
	}
	return problemAt(0, 0, "", "invalid validation file: %v", err)
}

// schemaText returns the schema of the file, from `schema` or from the
// file that `schemaFile` names, and the file line before the schema's
// first line (0 for a separate schema file).
func (lf *loadedValidationFile) schemaText() (string, int, error) {
	parsed := lf.parsed
	switch {
	case len(parsed.NamespaceConfigs) > 0:
		return "", 0, problemAt(0, 0, "", "the namespace_configs section is no longer supported: write the definitions in `schema`")
	case len(parsed.ValidationTuples) > 0:
		return "", 0, problemAt(0, 0, "", "the validation_tuples section is no longer supported: write the relationships in `relationships`")
	case parsed.Schema.Schema != "" && parsed.SchemaFile != "":
		return "", 0, problemAt(parsed.Schema.SourcePosition.LineNumber, 0, "", "only one of schema or schemaFile can be specified")
	case parsed.SchemaFile != "":
		if !filepath.IsLocal(parsed.SchemaFile) {
			return "", 0, problemAt(0, 0, parsed.SchemaFile,
				"schemaFile %q is not local: it must be a relative path inside the directory of %s", parsed.SchemaFile, lf.path)
		}
		schemaPath := filepath.Join(filepath.Dir(lf.path), parsed.SchemaFile)
		data, err := os.ReadFile(schemaPath)
		if err != nil {
			return "", 0, problemAt(0, 0, parsed.SchemaFile, "read schemaFile: %v", err)
		}
		return string(data), 0, nil
	case strings.TrimSpace(parsed.Schema.Schema) == "":
		return "", 0, problemAt(0, 0, "", "either schema or schemaFile must be present")
	default:
		return parsed.Schema.Schema, schemaStartLine(lf.contents, parsed.Schema.SourcePosition.LineNumber), nil
	}
}

// schemaStartLine returns the file line before the schema text's first
// line. A block scalar ("schema: |") starts on the line after its key, a
// plain or quoted value on the key's own line.
// NOTE: a folded scalar ("schema: >") joins lines, so positions inside it
// can be off by the number of folded line breaks.
func schemaStartLine(contents []byte, valueLine int) int {
	lines := strings.Split(string(contents), "\n")
	if valueLine < 1 || valueLine > len(lines) {
		return 0
	}
	_, value, found := strings.Cut(lines[valueLine-1], ":")
	value = strings.TrimSpace(value)
	if found && (strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">")) {
		return valueLine
	}
	return valueLine - 1
}

// compileValidationSchema compiles the schema with Mandate's compiler and
// reports an error at its line in the validation file.
func compileValidationSchema(ctx context.Context, text string, lineOffset int) (*schema.Schema, error) {
	if strings.TrimSpace(text) == "" {
		return nil, problemAt(0, 0, "", "either schema or schemaFile must be present")
	}
	compiled, err := schema.Compile(ctx, text)
	if err == nil {
		return compiled, nil
	}

	var withContext compiler.WithContextError
	if errors.As(err, &withContext) {
		line, column, posErr := withContext.SourceRange.Start().LineAndColumn()
		if posErr == nil {
			// The compiler counts lines and columns from 0 here.
			return nil, problemAt(lineOffset+line+1, column+1, withContext.ErrorSourceCode, "invalid schema: %v", err)
		}
	}
	if withSource, ok := spiceerrors.AsWithSourceError(err); ok && withSource.LineNumber > 0 {
		return nil, problemAt(lineOffset+int(withSource.LineNumber), int(withSource.ColumnPosition),
			withSource.SourceCodeString, "invalid schema: %v", err)
	}
	return nil, problemAt(0, 0, "", "invalid schema: %v", err)
}

// writeGraph stores the schema and relationships in a new in-memory graph
// and takes the snapshot that the checks read. The graph is not closed,
// because its memory store holds nothing to release and the snapshot
// keeps reading its index.
func (lf *loadedValidationFile) writeGraph(ctx context.Context, rels []*graph.Relationship) error {
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		return err
	}
	_, err = g.Update(ctx, func(tx *graph.Tx) error {
		tx.SetSchema(lf.schema.Text)
		for _, r := range rels {
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write relationships of %s to the graph: %w", lf.path, err)
	}
	lf.snap = g.HeadSnapshot(time.Now())
	return nil
}
