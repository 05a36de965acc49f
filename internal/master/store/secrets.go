package store

// secretsV4: see migrations in store.go.
const secretsV4 = reserved
