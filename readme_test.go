package goatdb_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEExample keeps the README's embedding example identical to
// Example, which compiles and runs.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README has no Go block")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		code, _, _ := strings.Cut(line, " //") // README comments may differ
		code = strings.TrimSpace(code)
		if !strings.Contains(body, code) {
			t.Errorf("README line %q is not in Example", code)
		}
	}
}
