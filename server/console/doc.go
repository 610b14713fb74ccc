// Package console is goatdb's web console: a single page, embedded in the
// binary, that browses, queries, edits and watches a server's repositories
// through the server's JSON API (/v1/...).
//
// Handler serves exactly two kinds of URL:
//
//	GET /              index.html, Cache-Control: no-cache
//	GET /console/NAME  an asset (CSS, JavaScript, icon) embedded from static/
//
// HEAD is answered like GET without a body; other methods get 405 and any
// other path 404. Everything else (the /v1 routes) belongs to the server.
//
// Invariants:
//
//   - The files are fixed at build time (go:embed): no build step, no
//     templates, nothing read from disk. index.html names each asset with
//     ?v=HASH (the first 12 hex digits of its SHA-256), filled in once at
//     start; an asset asked for with its current hash is cached for a year
//     (immutable), without it or with an old one it is revalidated
//     (no-cache and its ETag).
//   - Every answer carries a strict Content-Security-Policy: scripts,
//     styles and connections only from the server's own origin, no inline
//     script or style, no framing. The console never needs more: it talks
//     only to the same origin with fetch and EventSource.
//   - Text assets are sent gzip-compressed, compressed once at start, to a
//     client that accepts gzip.
//   - The console holds no secret: a browser's login token lives in the
//     server's HttpOnly cookie, out of the page's reach.
//
// Handler is safe for concurrent use; its state is read-only after the
// first call.
package console
