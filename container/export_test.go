package container

// HasCapability is hasCapability, for the tests of package container_test.
var HasCapability = hasCapability

// InitBinary is initBinary, for the tests of package container_test.
var InitBinary = initBinary
