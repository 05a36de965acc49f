package httpapi

// audited appends mutating requests to the audit log. (To be built:
// issue 12's hash-chained log.)
func (s *server) audited(route string, h handler) handler { return h }
