"""Writes the inputs of the lookup-cost benchmark: ROWS users in the sample environment as a
simulator users file, the same users by ID, and the same users by username (same order, same
expiry, same ticket column).
Usage: python3 benches/named-users.py ROWS FOLDER"""
import os
import sys
import uuid

rows, folder = int(sys.argv[1]), sys.argv[2]
environment = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01"
users = [(str(uuid.uuid4()), f"user{i:06d}") for i in range(rows)]
with open(os.path.join(folder, "directory.csv"), "w") as f:
    f.write("environment_id,user_id,username,email\n")
    for user_id, username in users:
        f.write(f"{environment},{user_id},{username},{username}@example.com\n")
with open(os.path.join(folder, "by-id.csv"), "w") as f:
    f.write("environmentId,userId,until,ticket\n")
    for i, (user_id, _) in enumerate(users):
        f.write(f"{environment},{user_id},8h,INC-{i % 100}\n")
with open(os.path.join(folder, "by-username.csv"), "w") as f:
    f.write("environmentId,username,until,ticket\n")
    for i, (_, username) in enumerate(users):
        f.write(f"{environment},{username},8h,INC-{i % 100}\n")
