package node

import "net"

// NetConn is the connection under an edge upstream connection: the edge
// peeks at the socket of a local replica's connection, without reading,
// to see whether the app closed it while it was idle (edge.peerClosed).
func (c *edgeConn) NetConn() net.Conn { return c.Conn }
