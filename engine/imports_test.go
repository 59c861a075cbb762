package engine

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImportsFollowArchitecture checks every import between the packages of
// the module, in every non-test file under every build tag, against the
// layers docs/architecture.md lists: a package may import only packages of
// lower layers. A package missing from the list, or listed but gone, fails
// too, so the page and the code cannot drift apart.
func TestImportsFollowArchitecture(t *testing.T) {
	const root = ".."
	layer, err := readLayers(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	imports, err := moduleImports(root)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		lp, ok := layer[pkg]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is not in a layer of docs/architecture.md", pkg))
			continue
		}
		for _, imp := range imports[pkg] {
			li, ok := layer[imp]
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s imports %s, which is not in a layer of docs/architecture.md", pkg, imp))
			case li >= lp:
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): only lower layers may be imported", pkg, lp, imp, li))
			}
		}
	}
	for pkg := range layer {
		if _, ok := imports[pkg]; !ok {
			bad = append(bad, fmt.Sprintf("docs/architecture.md lists %s, which has no Go files", pkg))
		}
	}
	slices.Sort(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// readLayers reads the table of layers of docs/architecture.md: rows
// "| N | `pkg` `pkg` … | …" between the lines "<!-- layers -->" and
// "<!-- end layers -->". Packages are named relative to the module root.
func readLayers(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	layer := map[string]int{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "<!-- layers -->":
			in = true
			continue
		case "<!-- end layers -->":
			in = false
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(cells[0]))
		if err != nil {
			continue // the header and its rule
		}
		for _, f := range strings.Fields(cells[1]) {
			pkg := strings.Trim(f, "`,")
			if pkg == "" {
				continue
			}
			if l, dup := layer[pkg]; dup {
				return nil, fmt.Errorf("%s: %s is in layers %d and %d", path, pkg, l, n)
			}
			layer[pkg] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(layer) == 0 {
		return nil, fmt.Errorf("%s: no layers between <!-- layers --> and <!-- end layers -->", path)
	}
	return layer, nil
}

// moduleImports returns, for every directory of the module with Go files,
// the packages of the module its non-test files import (module prefix
// removed).
func moduleImports(root string) (map[string][]string, error) {
	const module = "geca/"
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		test := strings.HasSuffix(name, "_test.go")
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		file, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		deps := out[pkg]
		if deps == nil {
			deps = []string{}
		}
		if test {
			// A test binary is no dependency of anything: tests may use
			// what lies above their package.
			out[pkg] = deps
			return nil
		}
		for _, spec := range file.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if dep, ok := strings.CutPrefix(imp, module); ok && dep != pkg && !slices.Contains(deps, dep) {
				deps = append(deps, dep)
			}
		}
		out[pkg] = deps
		return nil
	})
	return out, err
}
