# The longest functions under a folder: python3 scripts/long_functions.py src 20
import re,sys,glob
root=sys.argv[1]; top=int(sys.argv[2]) if len(sys.argv)>2 else 20
res=[]
for p in glob.glob(root+'/**/*.rs',recursive=True):
    lines=open(p).read().split('\n')
    i=0
    while i<len(lines):
        m=re.match(r'^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)',lines[i])
        if m:
            ind=m.group(1); j=i
            # find opening brace line then matching closing at same indent
            while j<len(lines) and not lines[j].rstrip().endswith('{') and not lines[j].rstrip().endswith(';'):
                j+=1
            if j<len(lines) and lines[j].rstrip().endswith(';'): i+=1; continue
            k=j+1
            while k<len(lines) and not (lines[k].startswith(ind+'}') and len(lines[k].rstrip())==len(ind)+1): k+=1
            res.append((k-i+1,p,i+1,m.group(5)))
            i=k
        i+=1
res.sort(reverse=True)
for r in res[:top]: print(*r)
