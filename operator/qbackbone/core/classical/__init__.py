"""The classical fallback: exact statevector or matrix-product-state simulation."""
