package store

// tenantsV5: see migrations in store.go.
const tenantsV5 = reserved
