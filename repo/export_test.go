package repo

// MarkSize is the length of a mark record, for the external tests.
const MarkSize = recHeadSize
