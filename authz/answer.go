package authz

// LoginAnswer is the JSON a server answers to the routes that issue a
// session certificate (/v1/auth/login, register and renew), and what a
// client checks before it keeps the certificate: that it decodes, names
// the client's session, and chains to Root for Audience.
type LoginAnswer struct {
	User        string   `json:"user"`        // "" for an anonymous session
	Roles       []string `json:"roles"`       // never null
	Session     string   `json:"session"`     // commit.SessionID.String()
	Certificate string   `json:"certificate"` // base64 of SessionCertificate.Encode
	Expires     string   `json:"expires"`     // RFC 3339
	Audience    string   `json:"audience"`    // the deployment
	Root        string   `json:"root"`        // base64 of the root public key
	// Node is the issuing node's public key (base64), which v2 request
	// MACs are keyed for (NewRequestKey).
	Node string `json:"node"`
}
