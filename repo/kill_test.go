package repo_test

// A real process crash: the test binary re-executes itself as a child that
// writes to a repository and reports each acknowledged write on stdout; the
// parent kills it with SIGKILL and checks that every acknowledged write is in
// the log. And the data directory lock between two processes.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

const (
	killEnv = "GOATDB_TEST_KILL_DIR"  // the child's data directory
	lockEnv = "GOATDB_TEST_LOCK_FILE" // the lock the child tries to take
)

// killStep returns the keys and the value the child writes in step i: one
// key, or every tenth step a batch of three.
func killStep(i int) ([]string, string) {
	v := strconv.Itoa(i)
	if i%10 == 9 {
		return []string{"batch0", "batch1", "batch2"}, v
	}
	return []string{fmt.Sprintf("k%02d", i%37)}, v
}

// TestKillChild is the child process of TestKill: it writes until killed
// (or for at most 30 seconds if the parent is gone), printing
// "ack <step> <key> <value>" for each write after Write returns.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("child process of TestKill")
	}
	r, err := repo.Open(filepath.Join(dir, "kill.log"), &repo.Options{Key: crashKey(t), Durability: repo.Sync})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		keys, v := killStep(i)
		var step crashStep
		var acks strings.Builder
		for _, k := range keys {
			step = append(step, crashStr(k, v))
			fmt.Fprintf(&acks, "ack %d %s %s\n", i, k, v)
		}
		if _, err := r.Write(crashUpdates(step)...); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		// One write(2) per step: a line is never half printed.
		if _, err := io.WriteString(os.Stdout, acks.String()); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	os.Exit(4)
}

// startChild re-executes the test binary as a child that runs only test,
// with env added to its environment, and returns it with its standard
// output and a record of its standard error. The child is killed if the
// test stops early.
func startChild(t *testing.T, test, env string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out, stderr
}

// childLines yields the whole lines a child process writes to out; a
// fragment without its newline (the child was killed mid-line) is no
// acknowledgement and is not yielded.
func childLines(out io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(out)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	return lines
}

// TestKill kills a writing child process with SIGKILL at three points and
// checks that every write it acknowledged survives.
func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	for _, target := range []int{60, 200, 333} {
		t.Run(fmt.Sprintf("after=%d", target), func(t *testing.T) {
			dir := t.TempDir()
			cmd, out, stderr := startChild(t, "TestKillChild", killEnv+"="+dir)
			lines := childLines(out)

			last := map[string]string{} // key → last acknowledged value
			maxStep := -1
			ack := func(line string) {
				f := strings.Fields(line)
				if len(f) != 4 || f[0] != "ack" {
					return
				}
				i, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				last[f[2]] = f[3]
				maxStep = max(maxStep, i)
			}
			timeout := time.After(2 * time.Second)
			acks := 0
		read:
			for acks < target {
				select {
				case line, ok := <-lines:
					if !ok {
						break read
					}
					ack(line)
					acks++
				case <-timeout:
					break read
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
			for line := range lines { // printed before it died: acknowledged too
				ack(line)
				acks++
			}
			werr := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", werr, stderr.String())
			}
			if acks == 0 {
				t.Fatalf("child acknowledged nothing\n%s", stderr.String())
			}
			t.Logf("killed after %d acknowledged writes (%d steps)", acks, maxStep+1)

			r := dbtest.OpenRepo(t, filepath.Join(dir, "kill.log"), &repo.Options{Key: crashKey(t)})
			dbtest.RequireClean(t, r)
			if d := r.Damage(); len(d) > 0 {
				t.Errorf("kill left damage: %v", d)
			}
			// The step after the last acknowledged one may have been
			// written before the kill; nothing later was even started.
			inflightKeys, inflight := killStep(maxStep + 1)
			for _, k := range r.Keys(true) {
				if _, ok := last[k]; !ok && !slices.Contains(inflightKeys, k) {
					t.Errorf("recovered %q, never written", k)
				}
			}
			for k, want := range last {
				v, _, ok := r.Get(k)
				got, _ := v.Get("v")
				switch {
				case !ok:
					t.Errorf("acknowledged item %s=%s lost", k, want)
				case item.Equal(got, item.String(want)):
				case slices.Contains(inflightKeys, k) && item.Equal(got, item.String(inflight)):
				default:
					t.Errorf("item %s = %v, acknowledged %s", k, got, want)
				}
			}
		})
	}
}

// TestLockChild is the child process of TestLock: it tries to take the lock
// and prints what happened.
func TestLockChild(t *testing.T) {
	name := os.Getenv(lockEnv)
	if name == "" {
		t.Skip("child process of TestLock")
	}
	l, err := vfs.OS.Lock(name)
	switch {
	case errors.Is(err, vfs.ErrLocked):
		fmt.Printf("locked: %v\n", err)
	case err != nil:
		fmt.Printf("error: %v\n", err)
	default:
		fmt.Println("acquired")
		l.Close()
	}
}

// TestLock checks that two processes cannot hold one data directory's lock,
// and that closing it lets the other process take it.
func TestLock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	name := filepath.Join(t.TempDir(), "LOCK")
	child := func() string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
		// A race-enabled binary sleeps a second at exit unless told not to.
		cmd.Env = append(os.Environ(), lockEnv+"="+name, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "locked:") || strings.HasPrefix(line, "error:") || line == "acquired" {
				return line
			}
		}
		t.Fatalf("child printed no outcome:\n%s", out)
		return ""
	}

	l, err := vfs.OS.Lock(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := child(); !strings.HasPrefix(got, "locked:") || !strings.Contains(got, name) {
		t.Errorf("child while the parent holds the lock: %q, want an ErrLocked naming %s", got, name)
	}
	if l2, err := vfs.OS.Lock(name); !errors.Is(err, vfs.ErrLocked) {
		if err == nil {
			l2.Close()
		}
		t.Errorf("second Lock in the same process: %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := child(); got != "acquired" {
		t.Errorf("child after the parent released the lock: %q, want acquired", got)
	}
	// The child exited, releasing it: the parent can take it again.
	l, err = vfs.OS.Lock(name)
	if err != nil {
		t.Fatalf("relock after the child exited: %v", err)
	}
	l.Close()
}
