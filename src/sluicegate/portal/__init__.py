"""The self-service portal's JSON API (/portal/api/): users sign in and manage their own things."""
