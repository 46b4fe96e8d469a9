"""What must survive a full card or a power cut: SQLite opened for it, disk faults in words, file names as
the file system has them. Imports only edge.types.
"""
