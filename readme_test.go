package goatdb_test

import (
	"os"
	"strings"
	"testing"
)

// readmeBlocksIn checks that every line of the Go blocks of a README
// section (from the heading to the next heading of its level or above;
// the whole README's first block if heading is "") is in the source of an
// example that runs: file, from the line that declares fn on ("" for the
// whole file). Comments after " //" may differ. It returns how many
// blocks it checked.
func readmeBlocksIn(t *testing.T, heading, file, fn string) int {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if heading != "" {
		var ok bool
		if _, section, ok = strings.Cut(section, "\n"+heading+"\n"); !ok {
			t.Fatalf("README has no section %q", heading)
		}
		level := strings.IndexByte(heading, ' ') // its number of #
		for _, line := range strings.SplitAfter(section, "\n") {
			if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
				section, _, _ = strings.Cut(section, line)
				break
			}
		}
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	if fn != "" {
		var ok bool
		if _, body, ok = strings.Cut(body, "func "+fn+"() {"); !ok {
			t.Fatalf("%s has no %s", file, fn)
		}
	}
	blocks := 0
	for rest := section; ; blocks++ {
		var block string
		var found bool
		if _, rest, found = strings.Cut(rest, "```go\n"); !found {
			break
		}
		block, rest, _ = strings.Cut(rest, "```")
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			code, _, _ := strings.Cut(line, " //")
			if code = strings.TrimSpace(code); !strings.Contains(body, code) {
				t.Errorf("README line %q (%s) is not in %s %s", code, heading, file, fn)
			}
		}
		if heading == "" {
			return 1
		}
	}
	return blocks
}

// TestREADMEExample keeps the README's embedding example identical to
// Example, which compiles and runs.
func TestREADMEExample(t *testing.T) {
	if n := readmeBlocksIn(t, "", "example_test.go", ""); n != 1 {
		t.Fatal("README has no Go block")
	}
}
