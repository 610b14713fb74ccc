package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/vfs"
)

// Identity is a server node's place in its deployment: the deployment's
// audience (the name every signed request and certificate is bound to), the
// root public key every certificate chains to, and this node's key and
// certificate, with which it signs session certificates and revocations.
type Identity struct {
	Audience string
	Root     ed25519.PublicKey
	NodeKey  ed25519.PrivateKey
	Node     *authz.NodeCertificate
}

// Validate checks that the node certificate is for NodeKey, chains to Root
// and is valid at now.
func (id *Identity) Validate(now time.Time) error {
	switch {
	case id == nil:
		return errors.New("server: no identity")
	case id.Audience == "":
		return errors.New("server: identity has no audience")
	case len(id.Root) != ed25519.PublicKeySize:
		return errors.New("server: identity has no root public key")
	case len(id.NodeKey) != ed25519.PrivateKeySize || id.Node == nil:
		return errors.New("server: identity has no node key or certificate")
	case !id.Node.Key().Equal(id.NodeKey.Public()):
		return errors.New("server: the node certificate is not for the node key")
	}
	if err := id.Node.Verify(id.Root, now); err != nil {
		return fmt.Errorf("server: node certificate: %w", err)
	}
	return nil
}

// Files of an identity in a data directory's auth/ folder.
const (
	identityDir  = "auth"
	rootKeyFile  = "root.key"
	nodeKeyFile  = "node.key"
	nodeCertFile = "node.cert"
	audienceFile = "audience"
	rootPubFile  = "root.pub"
)

// nodeLifetime is how long a node certificate made by OpenIdentity lasts;
// it is renewed when less than renewNodeBefore is left and the root key
// is at hand.
const (
	nodeLifetime    = 365 * 24 * time.Hour
	renewNodeBefore = 30 * 24 * time.Hour
)

// OpenIdentity loads the identity kept in dir/auth/, creating a new
// deployment on first use: a random audience, a root key, and a node key
// with a certificate from that root. The keys are written with mode 0600.
// A deployment of several nodes shares its audience and root: copy
// auth/audience and auth/root.key from the first node's directory to each
// other node's (each keeps a node key of its own, and gets a node
// certificate from the root when it starts), or keep the root key
// elsewhere, give each node auth/root.pub (the root public key in hex)
// and a node.cert the root signed. A node whose certificate does not
// chain to the root it holds gets a new one.
func OpenIdentity(dir string) (*Identity, error) {
	ad := filepath.Join(dir, identityDir)
	if err := vfs.MkdirAllSync(vfs.OS, ad, 0o700); err != nil {
		return nil, fmt.Errorf("server: identity: %w", err)
	}
	now := time.Now()
	id := &Identity{}
	aud, err := os.ReadFile(filepath.Join(ad, audienceFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		var b [8]byte
		_, _ = rand.Read(b[:])
		aud = []byte("goatdb-" + hex.EncodeToString(b[:]))
		if err := writeSecret(filepath.Join(ad, audienceFile), append(aud, '\n')); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("server: identity: %w", err)
	}
	id.Audience = strings.TrimSpace(string(aud))

	root, err := loadOrCreateKey(filepath.Join(ad, rootKeyFile), !exists(filepath.Join(ad, rootPubFile)))
	if err != nil {
		return nil, err
	}
	if root != nil {
		id.Root = root.Public().(ed25519.PublicKey)
	} else {
		b, err := os.ReadFile(filepath.Join(ad, rootPubFile))
		if err != nil {
			return nil, fmt.Errorf("server: identity: %w", err)
		}
		pub, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("server: identity: %s is not a hex Ed25519 public key", rootPubFile)
		}
		id.Root = pub
	}
	if id.NodeKey, err = loadOrCreateKey(filepath.Join(ad, nodeKeyFile), true); err != nil {
		return nil, err
	}
	certPath := filepath.Join(ad, nodeCertFile)
	if b, err := os.ReadFile(certPath); err == nil {
		if id.Node, err = authz.DecodeNodeCertificate(b); err != nil {
			return nil, fmt.Errorf("server: identity: %s: %w", certPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server: identity: %w", err)
	}
	if root != nil && (id.Node == nil || !id.Node.Key().Equal(id.NodeKey.Public()) || id.Node.Expires().Sub(now) < renewNodeBefore ||
		id.Node.Verify(id.Root, now) != nil) {
		name, _ := os.Hostname()
		name = nodeName(name)
		if id.Node, err = authz.IssueNode(root, authz.NodeFields{Node: name, Key: id.NodeKey.Public().(ed25519.PublicKey),
			NotBefore: now.Add(-2 * certSkew), Expires: now.Add(nodeLifetime)}); err != nil {
			return nil, fmt.Errorf("server: identity: %w", err)
		}
		if err := writeSecret(certPath, id.Node.Encode()); err != nil {
			return nil, err
		}
	}
	if err := id.Validate(now); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, ad)
	}
	return id, nil
}

// nodeName makes a node certificate's name from a host name.
func nodeName(host string) string {
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "node"
	}
	return string(b[:min(len(b), 128)])
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadOrCreateKey reads an Ed25519 key kept as its 32-byte seed, or makes
// one if there is none and create is set (else it returns nil).
func loadOrCreateKey(path string, create bool) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("server: identity: %s holds %d bytes, not a %d-byte key seed", path, len(b), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(b), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("server: identity: %w", err)
	case !create:
		return nil, nil
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	if err := writeSecret(path, key.Seed()); err != nil {
		return nil, err
	}
	return key, nil
}

// writeSecret writes a file readable only by its owner, atomically and
// durably (the file and its directory entry are synced before it
// returns): a key that certified sessions must not vanish in a crash, or
// the next start would make a new deployment.
func writeSecret(path string, b []byte) error {
	if err := vfs.WriteFileAtomic(vfs.OS, path, b, 0o600); err != nil {
		return fmt.Errorf("server: identity: %w", err)
	}
	return nil
}

// NewIdentity makes an identity in memory (a new root, node key and
// certificate), for tests and for servers that keep nothing on disk.
func NewIdentity(audience string) (*Identity, ed25519.PrivateKey, error) {
	_, root, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	_, nodeKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	node, err := authz.IssueNode(root, authz.NodeFields{Node: "node", Key: nodeKey.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-2 * certSkew), Expires: now.Add(nodeLifetime)})
	if err != nil {
		return nil, nil, err
	}
	return &Identity{Audience: audience, Root: root.Public().(ed25519.PublicKey), NodeKey: nodeKey, Node: node}, root, nil
}
