package server

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/vfs"
)

// A deployment of several nodes shares one audience and one root key,
// which certifies each node's own key. The root key is best kept offline:
// WriteRootFile makes it once (goatdb root init), and InitNode gives a
// data directory a node key and a certificate from it (goatdb node init)
// without copying the root key there. The node then holds the root's
// public key only (auth/root.pub): it checks certificates but issues no
// node certificates itself, and its own certificate is renewed by running
// node init again before it expires.

// ErrRootFile is wrapped by ReadRootFile's errors for a file that is not
// a root file.
var ErrRootFile = errors.New("server: not a goatdb root file")

// rootFileMagic is the first line of a root file.
const rootFileMagic = "goatdb deployment root 1"

// maxRootFile bounds what ReadRootFile reads.
const maxRootFile = 4096

// NewRoot makes a new deployment: a root key and, if audience is "", a
// random audience name.
func NewRoot(audience string) (string, ed25519.PrivateKey, error) {
	if audience == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		audience = "goatdb-" + hex.EncodeToString(b[:])
	}
	if err := checkAudience(audience); err != nil {
		return "", nil, err
	}
	_, key, err := ed25519.GenerateKey(nil)
	return audience, key, err
}

func checkAudience(a string) error {
	if a == "" || len(a) > 128 || strings.ContainsAny(a, " \t\r\n") {
		return fmt.Errorf("server: audience %q: want 1-128 characters without spaces", a)
	}
	return nil
}

// WriteRootFile writes a deployment's audience and root key to path, only
// readable by its owner, and refuses to replace an existing file.
func WriteRootFile(path, audience string, key ed25519.PrivateKey) error {
	if err := checkAudience(audience); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("server: %s exists; a root key is made once (remove the file first if you mean to start a new deployment)", path)
	}
	text := fmt.Sprintf("%s\naudience %s\nseed %s\n", rootFileMagic, audience, hex.EncodeToString(key.Seed()))
	if err := vfs.WriteFileAtomic(vfs.OS, path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("server: write root file: %w", err)
	}
	return nil
}

// ReadRootFile reads a root file written by WriteRootFile.
func ReadRootFile(path string) (audience string, key ed25519.PrivateKey, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("server: read root file: %w", err)
	}
	defer f.Close()
	b := make([]byte, maxRootFile+1)
	n, _ := f.Read(b)
	return ParseRootFile(b[:n])
}

// ParseRootFile parses the text of a root file: its magic line, then
// "audience NAME" and "seed HEX" (a 32-byte Ed25519 seed), nothing else.
func ParseRootFile(data []byte) (audience string, key ed25519.PrivateKey, err error) {
	if len(data) > maxRootFile {
		return "", nil, fmt.Errorf("%w: over %d bytes", ErrRootFile, maxRootFile)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || lines[0] != rootFileMagic {
		return "", nil, fmt.Errorf("%w: want the lines %q, \"audience NAME\" and \"seed HEX\" (from 'goatdb root init')", ErrRootFile, rootFileMagic)
	}
	aud, ok1 := strings.CutPrefix(lines[1], "audience ")
	seedHex, ok2 := strings.CutPrefix(lines[2], "seed ")
	seed, herr := hex.DecodeString(seedHex)
	switch {
	case !ok1 || !ok2:
		return "", nil, fmt.Errorf("%w: want \"audience NAME\" then \"seed HEX\"", ErrRootFile)
	case checkAudience(aud) != nil:
		return "", nil, fmt.Errorf("%w: %v", ErrRootFile, checkAudience(aud))
	case herr != nil || len(seed) != ed25519.SeedSize:
		return "", nil, fmt.Errorf("%w: the seed is not %d bytes of hex", ErrRootFile, ed25519.SeedSize)
	}
	return aud, ed25519.NewKeyFromSeed(seed), nil
}

// InitNode makes data directory dir a node of the deployment of audience
// and root: it writes auth/audience, auth/root.pub and a node certificate
// named name, valid for life, for the directory's node key (made if it
// has none). The root key itself is not written. It refuses a directory
// that belongs to another deployment (another audience or root), and one
// that holds a root key (the first node of a deployment made by
// OpenIdentity: it is a node already).
func InitNode(dir, audience string, root ed25519.PrivateKey, name string, life time.Duration) (*Identity, error) {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, " \t\r\n") {
		return nil, fmt.Errorf("server: node name %q: want 1-128 characters without spaces", name)
	}
	if life <= 0 {
		life = nodeLifetime
	}
	ad := filepath.Join(dir, identityDir)
	if err := vfs.MkdirAllSync(vfs.OS, ad, 0o700); err != nil {
		return nil, fmt.Errorf("server: node init: %w", err)
	}
	if exists(filepath.Join(ad, rootKeyFile)) {
		return nil, fmt.Errorf("server: %s holds a root key: this directory is a node of its own deployment already; give new nodes empty directories", ad)
	}
	pub := root.Public().(ed25519.PublicKey)
	if b, err := os.ReadFile(filepath.Join(ad, audienceFile)); err == nil && strings.TrimSpace(string(b)) != audience {
		return nil, fmt.Errorf("server: %s belongs to another deployment (%q, not %q); give each deployment's nodes their own directories", dir, strings.TrimSpace(string(b)), audience)
	}
	if b, err := os.ReadFile(filepath.Join(ad, rootPubFile)); err == nil && strings.TrimSpace(string(b)) != hex.EncodeToString(pub) {
		return nil, fmt.Errorf("server: %s trusts another root key; it belongs to another deployment", dir)
	}
	if err := writeSecret(filepath.Join(ad, audienceFile), []byte(audience+"\n")); err != nil {
		return nil, err
	}
	if err := writeSecret(filepath.Join(ad, rootPubFile), []byte(hex.EncodeToString(pub)+"\n")); err != nil {
		return nil, err
	}
	nodeKey, err := loadOrCreateKey(filepath.Join(ad, nodeKeyFile), true)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nc, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: nodeKey.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-2 * certSkew), Expires: now.Add(life)})
	if err != nil {
		return nil, fmt.Errorf("server: node init: %w", err)
	}
	if err := writeSecret(filepath.Join(ad, nodeCertFile), nc.Encode()); err != nil {
		return nil, err
	}
	return OpenIdentity(dir)
}
