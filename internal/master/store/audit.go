package store

// auditChainV2: see migrations in store.go.
const auditChainV2 = reserved
