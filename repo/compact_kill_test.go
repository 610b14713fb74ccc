package repo_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

const killCompactEnv = "GOATDB_TEST_KILL_COMPACT_DIR" // the child's data directory

// TestKill9DuringCompactChild is the child process of
// TestKill9DuringCompact: it writes until killed (or for at most 30
// seconds), printing "ack <step> <key> <value>" after each write returns,
// while another goroutine compacts the log over and over at a horizon a
// few milliseconds back, so that most of what it wrote is collected.
func TestKill9DuringCompactChild(t *testing.T) {
	dir := os.Getenv(killCompactEnv)
	if dir == "" {
		t.Skip("child process of TestKill9DuringCompact")
	}
	r, err := repo.Open(filepath.Join(dir, "kill.log"), &repo.Options{Key: crashKey(t), Durability: repo.Sync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	go func() {
		for {
			st, err := r.Compact(time.Now().Add(-5*time.Millisecond).UnixMilli(), nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child: compact:", err)
				os.Exit(2)
			}
			fmt.Fprintf(os.Stdout, "compacted %d %d\n", st.CommitsBefore, st.CommitsAfter)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		key, v := fmt.Sprintf("k%02d", i%37), strconv.Itoa(i)
		pad := strings.Repeat(v+";", 100) // a full snapshot each time: the old ones are collectable
		if _, err := r.Write(repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
			return c.Value.With("v", item.String(v)).With("pad", item.String(pad)), c.Schema, nil
		}}); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		if _, err := io.WriteString(os.Stdout, fmt.Sprintf("ack %d %s %s\n", i, key, v)); err != nil {
			os.Exit(3)
		}
	}
	os.Exit(4)
}

// TestKill9DuringCompact kills, with SIGKILL, a child process that writes
// while it compacts its log in a loop, at three points, and checks that
// every write it acknowledged survives, that the log checks clean, and
// that the next open removes the copy a compaction in flight left.
func TestKill9DuringCompact(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	for _, target := range []int{50, 150, 400} {
		t.Run(fmt.Sprintf("after=%d", target), func(t *testing.T) {
			dir := t.TempDir()
			cmd, out, stderr := startChild(t, "TestKill9DuringCompactChild", killCompactEnv+"="+dir)
			lines := childLines(out)
			last := map[string]string{}
			acks, compactions, maxStep := 0, 0, -1
			handle := func(line string) {
				f := strings.Fields(line)
				switch {
				case len(f) == 3 && f[0] == "compacted":
					compactions++
				case len(f) == 4 && f[0] == "ack":
					i, err := strconv.Atoi(f[1])
					if err != nil {
						t.Fatalf("bad line %q", line)
					}
					last[f[2]] = f[3]
					maxStep = max(maxStep, i)
					acks++
				}
			}
			timeout := time.After(5 * time.Second)
		read:
			for acks < target {
				select {
				case line, ok := <-lines:
					if !ok {
						break read
					}
					handle(line)
				case <-timeout:
					break read
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
			for line := range lines {
				handle(line)
			}
			werr := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", werr, stderr.String())
			}
			if acks == 0 || compactions == 0 {
				t.Fatalf("child acknowledged %d writes and %d compactions\n%s", acks, compactions, stderr.String())
			}
			t.Logf("killed after %d acknowledged writes and %d compactions", acks, compactions)

			path := filepath.Join(dir, "kill.log")
			r := dbtest.OpenRepo(t, path, &repo.Options{Key: crashKey(t)})
			dbtest.RequireClean(t, r)
			if d := r.Damage(); len(d) > 0 {
				t.Errorf("kill left damage: %v", d)
			}
			if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the copy of the compaction in flight is left: %v", err)
			}
			inflight := fmt.Sprintf("k%02d", (maxStep+1)%37)
			for k, want := range last {
				v, _, ok := r.Get(k)
				got, _ := v.Get("v")
				switch {
				case !ok:
					t.Errorf("acknowledged item %s=%s lost", k, want)
				case item.Equal(got, item.String(want)):
				case k == inflight && item.Equal(got, item.String(strconv.Itoa(maxStep+1))):
				default:
					t.Errorf("item %s = %v, acknowledged %s", k, got, want)
				}
			}
		})
	}
}
