package goatdb

import "github.com/goatdb/goatdb/commit"

// SessionUnsaved is DB.Session without saving a new session key, for the
// tests that check which uses save it.
func SessionUnsaved(db *DB) commit.SessionID { return db.session }
