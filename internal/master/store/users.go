package store

// usersV3: see migrations in store.go.
const usersV3 = reserved
