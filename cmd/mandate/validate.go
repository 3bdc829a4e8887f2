package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE [FILE...]",
		Short: "Run SpiceDB validation files against Mandate's engine",
		Long: `Run SpiceDB validation files (the YAML format of zed validate and the
Authzed playground) against Mandate's own engine, in process.

Each file gives a schema (schema, or schemaFile relative to the file),
relationships, assertions (assertTrue, assertFalse and assertCaveated, each
optionally "with {caveat context}") and expected relations (validation).
A file named *.zed is compiled as a schema alone.

For each file the command prints one line starting with ✓ when every check
passes. Otherwise it prints each failed check with its line in the file,
expected and actual result, and exits with status 1. A file that cannot be
read, or whose YAML, schema or relationships are invalid, also fails with
status 1 and names the line at fault.`,
		Example: `  mandate validate schema-tests.yaml
  mandate validate tests/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd, args)
		},
	}
}

// fileSummary counts what one validation file contained.
type fileSummary struct {
	relationships     int
	assertions        int
	expectedRelations int
}

func runValidate(cmd *cobra.Command, paths []string) error {
	out := cmd.OutOrStdout()
	passed := 0
	for _, path := range paths {
		summary, problems, err := validateFile(cmd, path)
		var pe *problemError
		switch {
		case errors.As(err, &pe):
			problems = pe.problems
		case err != nil:
			fmt.Fprintf(out, "✗ %s: %v\n", path, err)
			continue
		}
		if len(problems) > 0 {
			printProblems(out, path, problems)
			continue
		}
		passed++
		fmt.Fprintf(out, "✓ %s: Success! - %d relationships loaded, %d assertions run, %d expected relations validated\n",
			path, summary.relationships, summary.assertions, summary.expectedRelations)
	}
	if len(paths) > 1 {
		fmt.Fprintf(out, "total files: %d, successfully validated files: %d\n", len(paths), passed)
	}
	if passed < len(paths) {
		return fmt.Errorf("validation failed: %d of %d files did not pass", len(paths)-passed, len(paths))
	}
	return nil
}

// validateFile loads one file and runs its assertions and expected
// relations. It returns the failed checks, or an error when the file
// cannot be run.
func validateFile(cmd *cobra.Command, path string) (fileSummary, []validationProblem, error) {
	lf, err := loadValidationFile(cmd.Context(), path)
	if err != nil {
		return fileSummary{}, nil, err
	}
	problems, assertions := runAssertions(lf)
	problems = append(problems, runExpectedRelations(lf)...)
	return fileSummary{
		relationships:     len(lf.parsed.Relationships.Relationships),
		assertions:        assertions,
		expectedRelations: len(lf.parsed.ExpectedRelations.ValidationMap),
	}, problems, nil
}

// printProblems prints each problem with its position, the expected and
// actual result, and the lines of the file around it, then a closing line
// for the file.
func printProblems(out io.Writer, path string, problems []validationProblem) {
	lines := readLines(path)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].line < problems[j].line })
	for _, p := range problems {
		// The column of the excerpt in the file is more precise than the
		// one the YAML or schema parser reports, which counts from the
		// start of the YAML value.
		if p.line >= 1 && p.line <= len(lines) && p.excerpt != "" {
			if at := strings.Index(lines[p.line-1], p.excerpt); at >= 0 {
				p.column = at + 1
			}
		}
		location := path
		if p.line > 0 {
			location += ":" + strconv.Itoa(p.line)
			if p.column > 0 {
				location += ":" + strconv.Itoa(p.column)
			}
		}
		fmt.Fprintf(out, "error: %s: %s\n", location, p.message)
		if p.expected != "" || p.got != "" {
			fmt.Fprintf(out, "    expected: %s\n", p.expected)
			fmt.Fprintf(out, "    got:      %s\n", p.got)
		}
		printExcerpt(out, lines, p.line, p.excerpt)
		fmt.Fprintln(out)
	}
	noun := "problems"
	if len(problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(out, "✗ %s: %d %s\n", path, len(problems), noun)
}

// printExcerpt prints the two lines before line and the line itself,
// marked with ">", and underlines excerpt where that line contains it.
func printExcerpt(out io.Writer, lines []string, line int, excerpt string) {
	if line < 1 || line > len(lines) {
		return
	}
	width := len(strconv.Itoa(line))
	for i := max(1, line-2); i <= line; i++ {
		marker := "|"
		if i == line {
			marker = ">"
		}
		fmt.Fprintf(out, "  %*d %s %s\n", width, i, marker, lines[i-1])
	}
	if excerpt == "" {
		return
	}
	if at := strings.Index(lines[line-1], excerpt); at >= 0 {
		fmt.Fprintf(out, "  %*s > %s^%s\n", width, "", strings.Repeat(" ", at), strings.Repeat("~", len(excerpt)-1))
	}
}

// readLines returns the lines of the file for excerpts, or nil when it
// cannot be read again.
func readLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
}
