"""The caller box and rating pad at a counter: NEXT / RECALL / SKIP / TRANSFER / OPEN-CLOSE
buttons, status LEDs and a character display, and four rating buttons for the citizen."""
