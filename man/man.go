// Package man holds clinit's manual pages, clinit(8), cltab(5) and
// hactl(5), in markdown; make man renders them to roff with go-md2man
// (a tool of the module), and its tests check that they render and that
// clinit(8) documents every flag.
package man
