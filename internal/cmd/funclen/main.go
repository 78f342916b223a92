// Command funclen fails when a non-test function is longer than a limit,
// so that functions keep fitting on a screen (make lint runs it). With
// -tests it checks the functions of test files instead: the helpers that
// tests share should fit on a screen too.
//
//	go run ./internal/cmd/funclen [-max 100] [-tests] [dir]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	max := flag.Int("max", 100, "longest allowed function, in lines")
	tests := flag.Bool("tests", false, "check the functions of _test.go files (Test*, Benchmark*, Fuzz* and Example* excepted) instead")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	long, err := longFunctions(root, *max, *tests)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	for _, l := range long {
		fmt.Println(l)
	}
	if len(long) > 0 {
		fmt.Fprintf(os.Stderr, "funclen: %d function(s) longer than %d lines; split them\n", len(long), *max)
		os.Exit(1)
	}
}

// longFunctions lists "file:line: name is N lines" for every function of
// the non-test Go files under root that is longer than max lines; with
// tests, for every helper function of the test files.
func longFunctions(root string, max int, tests bool) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != tests {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || (tests && testEntryPoint(fn.Name.Name)) {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > max {
				out = append(out, fmt.Sprintf("%s:%d: %s is %d lines", path, start.Line, fn.Name.Name, n))
			}
		}
		return nil
	})
	return out, err
}

// testEntryPoint reports whether a test file's function is one the go
// tool runs (a test, benchmark, fuzz target or example) rather than a
// helper.
func testEntryPoint(name string) bool {
	for _, p := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
