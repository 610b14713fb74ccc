package corrupt_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/internal/corrupt"
)

func TestMark(t *testing.T) {
	a, b := corrupt.New("a: corrupt"), corrupt.New("b: corrupt")
	err := fmt.Errorf("open x: %w", fmt.Errorf("%w: at offset 3", a))
	switch {
	case !errors.Is(err, corrupt.Err):
		t.Error("a wrapped sentinel does not mark its error corrupt")
	case !errors.Is(err, a):
		t.Error("the sentinel is lost")
	case errors.Is(err, b):
		t.Error("one sentinel is another")
	case errors.Is(errors.New("other"), corrupt.Err):
		t.Error("an unrelated error is corrupt")
	case err.Error() != "open x: a: corrupt: at offset 3":
		t.Errorf("message %q", err)
	}
}
