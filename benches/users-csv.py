"""Writes a benchmark input: ROWS rows, each for a new user in the sample environment, expiring
eight hours after the run starts, with a ticket column carried through.
Usage: python3 benches/users-csv.py ROWS PATH"""
import sys
import uuid

rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("environmentId,userId,until,ticket\n")
    for i in range(rows):
        f.write(f"4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01,{uuid.uuid4()},8h,INC-{i % 100}\n")
