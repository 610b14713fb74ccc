package repo

// MarkSize is the length of a mark record, for the external tests.
const MarkSize = recHeadSize

// AppendMarkForTest appends a mark claiming all of log.
func AppendMarkForTest(log []byte) []byte { return appendMark(log, int64(len(log))) }
