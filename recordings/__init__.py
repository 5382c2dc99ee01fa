"""Call recordings: content-addressed storage, integrity on read, encryption, retention."""
