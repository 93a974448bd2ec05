"""The domain of the carbon ledger: records, methodology, accounts, Merkle batches, proofs.

Plain Python over plain data. Nothing here imports FastAPI or web3; what the domain
needs from a chain is the small protocol in :mod:`ledger.anchoring`.
"""
